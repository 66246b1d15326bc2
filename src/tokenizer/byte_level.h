#pragma once
// GPT-2's reversible byte <-> printable-character map used by byte-level BPE vocabularies:
// bytes that are printable Latin-1 map to themselves, the other 68 to U+0100 onwards.
#include <string>
#include <string_view>

namespace camelid::byte_level {

const std::string& byte_to_text(unsigned char b);  // UTF-8 of the character standing for b
// Vocabulary text -> raw bytes; false if a character is not in the map.
bool text_to_bytes(std::string_view text, std::string& out);

}  // namespace camelid::byte_level
