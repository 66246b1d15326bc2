#include "tokenizer/byte_level.h"

#include <array>
#include <unordered_map>

#include "tokenizer/utf8.h"

namespace camelid::byte_level {
namespace {

struct Tables {
  std::array<std::string, 256> to_text;
  std::unordered_map<uint32_t, unsigned char> to_byte;  // code point -> byte
  Tables() {
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + extra++);
      utf8::append_codepoint(to_text[size_t(b)], cp);
      to_byte[cp] = static_cast<unsigned char>(b);
    }
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::string& byte_to_text(unsigned char b) { return tables().to_text[b]; }

bool text_to_bytes(std::string_view text, std::string& out) {
  const auto& map = tables().to_byte;
  size_t i = 0;
  while (i < text.size()) {
    const size_t n = utf8::valid_length(text, i);
    if (n == 0) return false;
    uint32_t cp = uint8_t(text[i]);
    if (n > 1) {
      cp &= 0x7F >> n;
      for (size_t k = 1; k < n; ++k) cp = cp << 6 | (uint8_t(text[i + k]) & 0x3F);
    }
    auto it = map.find(cp);
    if (it == map.end()) return false;
    out.push_back(char(it->second));
    i += n;
  }
  return true;
}

}  // namespace camelid::byte_level
