#include "runtime/regex_grammar.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <utility>
#include <vector>

#include "core/error.h"
#include "runtime/gbnf_text.h"

namespace camelid {

namespace {

constexpr uint32_t kMaxCp = 0x10FFFF;
constexpr int kMaxCount = 1000;

// A set of code points: sorted, disjoint, non-adjacent inclusive ranges.
using Set = std::vector<std::pair<uint32_t, uint32_t>>;

Set normalized(Set s) {
  std::sort(s.begin(), s.end());
  Set out;
  for (auto [lo, hi] : s) {
    if (!out.empty() && lo <= out.back().second + 1) out.back().second = std::max(out.back().second, hi);
    else out.push_back({lo, hi});
  }
  return out;
}

Set minus(const Set& a, const Set& b) {
  Set out;
  for (auto [lo, hi] : a) {
    uint32_t cur = lo;
    bool done = false;
    for (auto [blo, bhi] : b) {
      if (bhi < cur || blo > hi) continue;
      if (blo > cur) out.push_back({cur, blo - 1});
      if (bhi >= hi) { done = true; break; }
      cur = bhi + 1;
    }
    if (!done) out.push_back({cur, hi});
  }
  return out;
}

// Every code point UTF-8 can carry (no surrogates) outside s.
Set complement(const Set& s) {
  Set out;
  uint32_t next = 0;
  for (auto [lo, hi] : s) {
    if (lo > next) out.push_back({next, lo - 1});
    next = hi + 1;
  }
  if (next <= kMaxCp) out.push_back({next, kMaxCp});
  return minus(out, {{0xD800, 0xDFFF}});
}

bool contains(const Set& s, uint32_t cp) {
  for (auto [lo, hi] : s)
    if (cp >= lo && cp <= hi) return true;
  return false;
}

const Set kDigit = {{'0', '9'}};
const Set kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
// ECMA-262's WhiteSpace and LineTerminator.
const Set kSpace = normalized({{'\t', '\r'}, {' ', ' '}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A},
                               {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
                               {0xFEFF, 0xFEFF}});
const Set kLineTerminators = {{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}};

// A code point inside a GBNF literal or class.
std::string gbnf_char(uint32_t cp) {
  if ((cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z')) return std::string(1, char(cp));
  char buf[16];
  if (cp < 0x100) std::snprintf(buf, sizeof buf, "\\x%02X", unsigned(cp));
  else if (cp < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04X", unsigned(cp));
  else std::snprintf(buf, sizeof buf, "\\U%08X", unsigned(cp));
  return buf;
}

// The JSON text of the value characters in s: raw characters where JSON allows them, the
// escape otherwise (the short one where JSON has it; \u00XX in either case of hex digits).
std::string json_chars(const Set& s) {
  std::vector<std::string> alts;
  const Set raw = minus(s, {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}});
  if (raw.size() == 1 && raw[0].first == raw[0].second) alts.push_back("\"" + gbnf_char(raw[0].first) + "\"");
  else if (!raw.empty()) {
    std::string cls = "[";
    for (auto [lo, hi] : raw) cls += gbnf_char(lo) + (hi > lo ? "-" + gbnf_char(hi) : "");
    alts.push_back(cls + "]");
  }
  if (contains(s, '"')) alts.push_back(R"("\\\"")");
  if (contains(s, '\\')) alts.push_back(R"("\\\\")");
  static const char* const kShort[32] = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                         "b", "t", "n", nullptr, "f", "r"};
  // Every control character without a short escape (a negated class, '.'): one alternative.
  bool all_long = true;
  for (uint32_t c = 0; c < 0x20; ++c) all_long = all_long && (kShort[c] || contains(s, c));
  if (all_long) alts.push_back(R"("\\u00" ( "0" [0-7bBeEfF] | "1" [0-9a-fA-F] ))");
  for (uint32_t c = 0; c < 0x20; ++c) {
    if (!contains(s, c) || (all_long && !kShort[c])) continue;
    if (kShort[c]) {
      alts.push_back(std::string(R"("\\)") + kShort[c] + "\"");
    } else {
      const char* hex = "0123456789abcdef";
      const char lo = hex[c & 15], up = char(std::toupper(lo));
      alts.push_back(std::string(R"("\\u00)") + hex[c >> 4] + "\" " +
                     (lo == up ? std::string("\"") + lo + "\"" : std::string("[") + lo + up + "]"));
    }
  }
  if (alts.empty()) return "";  // no character: the caller names the place
  return gbnf_one_of(alts);
}

std::vector<uint32_t> code_points(std::string_view s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = uint8_t(s[i]);
    const int n = c < 0x80 ? 0 : c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : -1;
    if (n < 0 || c > 0xF4 || i + size_t(n) >= s.size()) fail("pattern: invalid UTF-8 at byte ", i);
    uint32_t cp = n ? c & (0x3F >> n) : c;
    for (int k = 1; k <= n; ++k) {
      const unsigned char d = uint8_t(s[i + size_t(k)]);
      if ((d & 0xC0) != 0x80) fail("pattern: invalid UTF-8 at byte ", i);
      cp = (cp << 6) | (d & 0x3F);
    }
    out.push_back(cp);
    i += size_t(n) + 1;
  }
  return out;
}

class RegexParser {
 public:
  explicit RegexParser(std::string_view pattern) : src_(pattern), p_(code_points(pattern)) {}

  std::string run() {
    std::vector<std::string> alts;
    for (;;) {
      // A top-level alternative: ^ and $ may anchor its ends; unanchored ends let any text by.
      const bool start = at('^');
      if (start) ++i_;
      std::string body = sequence(0);
      const bool end = at('$');
      if (end) ++i_;
      if (!start) body = "json-char* " + body;
      if (!end) body += " json-char*";
      alts.push_back(body);
      if (i_ == p_.size()) break;
      if (!at('|')) err("unexpected '", std::string(1, char(p_[i_])), "'");  // ')' without '(' or a misplaced anchor
      ++i_;
    }
    return "( \"\\\"\" " + gbnf_one_of(alts) + " \"\\\"\" )";
  }

 private:
  template <typename... Args>
  [[noreturn]] void err(Args&&... parts) const {
    err_at(i_, std::forward<Args>(parts)...);
  }
  template <typename... Args>
  [[noreturn]] void err_at(size_t at, Args&&... parts) const {
    fail("pattern '", printable_name(src_), "' at offset ", at, ": ", std::forward<Args>(parts)...);
  }
  bool at(uint32_t c) const { return i_ < p_.size() && p_[i_] == c; }

  std::string alternation(int depth) {
    std::string out = sequence(depth);
    bool many = false;
    while (at('|')) {
      ++i_;
      out += " | " + sequence(depth);
      many = true;
    }
    return many ? "( " + out + " )" : out;
  }

  // Terms up to '|', ')', a top-level '$' or the end. An empty sequence is "".
  std::string sequence(int depth) {
    std::string out;
    while (i_ < p_.size() && !at('|') && !at(')')) {
      if (at('$')) {
        if (depth == 0 && i_ + 1 == p_.size()) break;
        if (depth == 0 && i_ + 1 < p_.size() && p_[i_ + 1] == '|') break;
        err("'$' is supported only at the end of the pattern or of a top-level alternative");
      }
      if (at('^')) err("'^' is supported only at the start of the pattern or of a top-level alternative");
      std::string a = atom(depth);
      a = quantified(a);
      out += (out.empty() ? "" : " ") + a;
    }
    return out.empty() ? "\"\"" : out;
  }

  std::string quantified(const std::string& a) {
    if (i_ >= p_.size()) return a;
    int lo, hi;  // hi -1: unbounded
    const uint32_t c = p_[i_];
    if (c == '*') lo = 0, hi = -1, ++i_;
    else if (c == '+') lo = 1, hi = -1, ++i_;
    else if (c == '?') lo = 0, hi = 1, ++i_;
    else if (c == '{' && counted(lo, hi)) {
    } else return a;
    if (at('?')) ++i_;  // lazy: matches the same strings
    if (i_ < p_.size() && (p_[i_] == '*' || p_[i_] == '+' || p_[i_] == '?' || (p_[i_] == '{' && is_counted())))
      err("nothing to repeat");
    if (hi == -1) return "( " + a + " )" + (lo == 0 ? "*" : "+");
    if (lo == 0 && hi == 1) return "( " + a + " )?";
    return "( " + a + " ){" + std::to_string(lo) + (lo == hi ? "" : "," + std::to_string(hi)) + "}";
  }

  // {n}, {n,} or {n,m} at i_; anything else starting with '{' is a literal '{' (as ECMA-262's
  // Annex B and Python read it), except {,m}, which Python reads as {0,m}: refused.
  bool is_counted() const {
    size_t j = i_ + 1;
    auto digits = [&] {
      const size_t b = j;
      while (j < p_.size() && p_[j] >= '0' && p_[j] <= '9') ++j;
      return j > b;
    };
    if (!digits()) return false;
    if (j < p_.size() && p_[j] == ',') {
      ++j;
      digits();
    }
    return j < p_.size() && p_[j] == '}';
  }
  bool counted(int& lo, int& hi) {
    if (i_ + 1 < p_.size() && p_[i_ + 1] == ',') err("'{,m}' is read differently by regex engines: write {0,m}");
    if (!is_counted()) return false;
    ++i_;
    auto number = [&] {
      long long v = 0;
      while (i_ < p_.size() && p_[i_] >= '0' && p_[i_] <= '9') {
        v = std::min<long long>(v * 10 + (p_[i_++] - '0'), 1LL << 40);
      }
      if (v > kMaxCount) err("repetition counts above ", kMaxCount, " are not supported");
      return int(v);
    };
    lo = number();
    hi = lo;
    if (at(',')) {
      ++i_;
      hi = at('}') ? -1 : number();
    }
    ++i_;  // '}'
    if (hi != -1 && hi < lo) err("repetition {", lo, ",", hi, "} has its maximum below its minimum");
    return true;
  }

  std::string atom(int depth) {
    const uint32_t c = p_[i_];
    if (c == '(') {
      if (depth >= 64) err("groups nested deeper than 64");
      ++i_;
      if (at('?')) {
        ++i_;
        if (at(':')) ++i_;
        else if (at('<') && i_ + 1 < p_.size() && p_[i_ + 1] != '=' && p_[i_ + 1] != '!') {
          while (i_ < p_.size() && !at('>')) ++i_;  // (?<name>...): the name does not matter here
          if (!at('>')) err("unterminated group name");
          ++i_;
        } else err("lookaround and other (?...) groups are not supported");
      }
      std::string inner = alternation(depth + 1);
      if (!at(')')) err("unclosed '('");
      ++i_;
      return "( " + inner + " )";
    }
    if (c == '*' || c == '+' || c == '?') err("nothing to repeat");
    if (c == '{' && is_counted()) err("nothing to repeat");
    ++i_;
    std::string out = json_chars(c == '.' ? complement(kLineTerminators) : c == '[' ? char_class()
                                           : c == '\\'                   ? escape(false)
                                                                          : Set{{c, c}});
    if (out.empty()) err("a character class that matches no character");
    return out;
  }

  Set char_class() {
    const bool negated = at('^');
    if (negated) ++i_;
    Set s;
    while (!at(']')) {
      if (i_ >= p_.size()) err("unterminated character class");
      Set lo = class_atom();
      if (at('-') && i_ + 1 < p_.size() && p_[i_ + 1] != ']') {
        ++i_;
        Set hi = class_atom();
        auto single = [](const Set& x) { return x.size() == 1 && x[0].first == x[0].second; };
        if (!single(lo) || !single(hi)) {  // [\d-x]: Annex B reads the '-' as itself
          s.insert(s.end(), lo.begin(), lo.end());
          s.insert(s.end(), hi.begin(), hi.end());
          s.push_back({'-', '-'});
          continue;
        }
        if (hi[0].first < lo[0].first) err("range out of order in a character class");
        s.push_back({lo[0].first, hi[0].first});
      } else {
        s.insert(s.end(), lo.begin(), lo.end());
      }
    }
    ++i_;  // ']'
    s = normalized(minus(normalized(s), {{0xD800, 0xDFFF}}));
    return negated ? complement(s) : s;
  }

  Set class_atom() {
    const uint32_t c = p_[i_++];
    if (c != '\\') return {{c, c}};
    return escape(true);
  }

  uint32_t hex(int n) {
    if (i_ + size_t(n) > p_.size()) err("incomplete escape");
    uint32_t v = 0;
    for (int k = 0; k < n; ++k) {
      const uint32_t d = p_[i_++];
      if (d >= '0' && d <= '9') v = v * 16 + (d - '0');
      else if (d >= 'a' && d <= 'f') v = v * 16 + (d - 'a' + 10);
      else if (d >= 'A' && d <= 'F') v = v * 16 + (d - 'A' + 10);
      else err("bad hexadecimal digit in an escape");
    }
    return v;
  }

  // After a backslash: the characters the escape stands for.
  Set escape(bool in_class) {
    const size_t start = i_ - 1;  // the backslash: errors name where the escape starts
    if (i_ >= p_.size()) err_at(start, "'\\' at the end of the pattern");
    const uint32_t e = p_[i_++];
    auto one = [](uint32_t cp) { return Set{{cp, cp}}; };
    switch (e) {
      case 'd': return kDigit;
      case 'D': return complement(kDigit);
      case 'w': return kWord;
      case 'W': return complement(kWord);
      case 's': return kSpace;
      case 'S': return complement(kSpace);
      case 't': return one('\t');
      case 'n': return one('\n');
      case 'r': return one('\r');
      case 'v': return one('\v');
      case 'f': return one('\f');
      case 'b':
        if (in_class) return one('\b');
        err_at(start, "\\b (word boundary) is not supported");
      case '0':
        if (at('0') || (i_ < p_.size() && p_[i_] >= '0' && p_[i_] <= '9')) err_at(start, "octal escapes are not supported");
        return one(0);
      case 'c': {
        if (i_ >= p_.size() || !((p_[i_] | 0x20) >= 'a' && (p_[i_] | 0x20) <= 'z')) err_at(start, "\\c needs a letter");
        return one(p_[i_++] % 32);
      }
      case 'x': return one(hex(2));
      case 'u': {
        if (at('{')) err_at(start, "\\u{...} needs the u flag, which JSON Schema patterns do not have");
        uint32_t cp = hex(4);
        // A surrogate pair written as two escapes is one character.
        if (cp >= 0xD800 && cp <= 0xDBFF && i_ + 6 <= p_.size() && p_[i_] == '\\' && p_[i_ + 1] == 'u') {
          const size_t save = i_;
          i_ += 2;
          const uint32_t low = hex(4);
          if (low >= 0xDC00 && low <= 0xDFFF) return one(0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00));
          i_ = save;
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) err_at(start, "a lone surrogate cannot appear in a JSON string's UTF-8");
        return one(cp);
      }
      default:
        if (e >= '1' && e <= '9') err_at(start, "back-references are not supported");
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9'))
          err_at(start, "unknown escape '\\", std::string(1, char(e)), "'");
        return one(e);  // escaped punctuation stands for itself
    }
  }

  std::string_view src_;
  std::vector<uint32_t> p_;
  size_t i_ = 0;
};

}  // namespace

std::string regex_to_json_string_gbnf(std::string_view pattern) {
  if (pattern.size() > 4096) fail("pattern: longer than 4096 bytes");
  return RegexParser(pattern).run();
}

}  // namespace camelid
