#pragma once
// UTF-8 helpers shared by the tokenizers and the streaming decoder.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace camelid::utf8 {

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 if the bytes there are not
// a valid, complete sequence (overlong forms, surrogates and values above U+10FFFF rejected).
size_t valid_length(std::string_view s, size_t i);

bool is_valid(std::string_view s);

// s with every invalid sequence replaced by U+FFFD, one per maximal invalid subpart (the
// WHATWG / Python errors="replace" rule), so any byte string becomes valid text.
std::string sanitize(std::string_view s);

// Bytes at the end of s that begin a valid sequence not yet complete (0..3): a streaming decoder
// holds them back until the next token finishes the character.
size_t incomplete_tail(std::string_view s);

void append_codepoint(std::string& out, uint32_t cp);
inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

}  // namespace camelid::utf8
