#pragma once
// The chat page served at GET / (src/server/web/chat.html, embedded at build time by
// cmake/embed_file.cmake): one self-contained HTML file, so it works offline.
#include <string_view>

namespace camelid {
std::string_view chat_page_html();
}
