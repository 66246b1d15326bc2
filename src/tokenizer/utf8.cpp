#include "tokenizer/utf8.h"

namespace camelid::utf8 {
namespace {

// Expected length from the lead byte, and the allowed range of the second byte (which carries
// the overlong/surrogate/range restrictions); later continuation bytes are always 80..BF.
struct Lead {
  int len;
  uint8_t lo, hi;
};
Lead lead(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Number of bytes from s[i] that form a valid prefix of a sequence (at least 1 for a valid lead).
size_t valid_prefix(std::string_view s, size_t i, int* expected) {
  const Lead l = lead(uint8_t(s[i]));
  *expected = l.len;
  if (l.len <= 1) return size_t(l.len);
  size_t n = 1;
  for (; n < size_t(l.len) && i + n < s.size(); ++n) {
    const uint8_t c = uint8_t(s[i + n]);
    const bool ok = n == 1 ? (c >= l.lo && c <= l.hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) break;
  }
  return n;
}

}  // namespace

size_t valid_length(std::string_view s, size_t i) {
  int expected = 0;
  const size_t n = valid_prefix(s, i, &expected);
  return expected > 0 && n == size_t(expected) ? n : 0;
}

bool is_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = valid_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    // ASCII runs are the common case.
    if (uint8_t(s[i]) < 0x80) {
      out.push_back(s[i++]);
      continue;
    }
    int expected = 0;
    const size_t n = valid_prefix(s, i, &expected);
    if (expected > 0 && n == size_t(expected)) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append(kReplacement);
      i += n > 0 ? n : 1;
    }
  }
  return out;
}

size_t incomplete_tail(std::string_view s) {
  // A sequence is at most 4 bytes: look for its lead among the last 3.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const size_t i = s.size() - back;
    const uint8_t b = uint8_t(s[i]);
    if (b >= 0x80 && b <= 0xBF) continue;  // continuation: keep looking for the lead
    int expected = 0;
    const size_t n = valid_prefix(s, i, &expected);
    return expected > 1 && n == back && back < size_t(expected) ? back : 0;
  }
  return 0;
}

void append_codepoint(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

}  // namespace camelid::utf8
