#include "chat/jinja_text.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace camelid::jinja {

int64_t int_arg(const Args& a, size_t i, const char* name, int64_t def) {
  const Value* v = a.get(i, name);
  return v && v->is_number() ? v->as_int() : def;
}
std::string str_arg(const Args& a, size_t i, const char* name) {
  const Value* v = a.get(i, name);
  if (!v || !v->is_string()) throw TemplateError(std::string("expected a string argument '") + name + "'");
  return v->str();
}

const char* const kWs = " \t\n\r\f\v";

namespace {
bool is_lead(char c) { return (uint8_t(c) & 0xC0) != 0x80; }
}  // namespace

TextFinder::TextFinder(const std::string& needle) : needle_(needle) {
  if (needle.size() <= kShort) return;
  check_memory(needle.size() * sizeof(uint32_t));
  tick_bytes(needle.size());
  border_.assign(needle.size() + 1, 0);
  uint32_t k = 0;
  for (size_t i = 1; i < needle.size(); ++i) {
    while (k > 0 && needle[i] != needle[k]) k = border_[k];
    if (needle[i] == needle[k]) ++k;
    border_[i + 1] = k;
  }
}

size_t TextFinder::find(const std::string& hay, size_t from) const {
  const std::string& x = needle_;
  if (from > hay.size()) return std::string::npos;
  if (border_.empty()) {  // short needle: at most kShort comparisons per byte
    const size_t at = hay.find(x, from);
    tick_bytes(((at == std::string::npos ? hay.size() : at + x.size()) - from) * (1 + x.size() / 4));
    return at;
  }
  uint32_t k = 0;
  for (size_t i = from; i < hay.size(); ++i) {
    while (k > 0 && hay[i] != x[k]) k = border_[k];
    if (hay[i] == x[k]) ++k;
    if (k == x.size()) {
      tick_bytes(i - from);
      return i + 1 - x.size();
    }
  }
  tick_bytes(hay.size() - from);
  return std::string::npos;
}

size_t char_count(const std::string& s) {
  tick_bytes(s.size());
  return size_t(std::count_if(s.begin(), s.end(), is_lead));
}

size_t char_offset(const std::string& s, size_t index) {
  size_t seen = 0, i = 0;
  for (; i < s.size(); ++i)
    if (is_lead(s[i]) && seen++ == index) break;
  tick_bytes(i);
  return i;
}

std::string strip(const std::string& s, const std::string& chars, bool left, bool right) {
  tick_bytes(s.size() + chars.size());
  bool strip_it[256] = {};
  for (unsigned char c : chars) strip_it[c] = true;
  size_t b = 0, e = s.size();
  if (left) while (b < e && strip_it[uint8_t(s[b])]) ++b;
  if (right) while (e > b && strip_it[uint8_t(s[e - 1])]) --e;
  return s.substr(b, e - b);
}

std::string lower(std::string s) {
  tick_bytes(s.size());
  for (char& c : s) c = char(std::tolower(uint8_t(c)));
  return s;
}
std::string upper(std::string s) {
  tick_bytes(s.size());
  for (char& c : s) c = char(std::toupper(uint8_t(c)));
  return s;
}
std::string title(std::string s) {
  tick_bytes(s.size());
  bool start = true;
  for (char& c : s) {
    const bool alpha = std::isalpha(uint8_t(c));
    c = alpha ? char(start ? std::toupper(uint8_t(c)) : std::tolower(uint8_t(c))) : c;
    start = !alpha && !(uint8_t(c) & 0x80);
  }
  return s;
}
std::string capitalize(std::string s) {
  s = lower(std::move(s));
  if (!s.empty()) s[0] = char(std::toupper(uint8_t(s[0])));
  return s;
}

// One pass, sized first: replacing every 'a' of a long text by a long text fails before building.
std::string replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  tick_bytes(s.size());
  if (from.empty()) return s;
  const TextFinder finder(from);
  size_t n = 0;
  for (size_t at = finder.find(s); at != std::string::npos && (count < 0 || int64_t(n) < count); at = finder.find(s, at + from.size())) ++n;
  const size_t max = active_limits().max_string;
  if (to.size() > from.size() && n > 0 && (to.size() - from.size()) > (max - std::min(max, s.size())) / n)
    throw LimitError("string longer than " + mib(max));
  std::string out;
  out.reserve(s.size() - n * from.size() + n * to.size());
  size_t i = 0;
  for (size_t k = 0; k < n; ++k) {
    const size_t at = finder.find(s, i);
    out.append(s, i, at - i);
    out += to;
    i = at + from.size();
  }
  out.append(s, i, std::string::npos);
  tick_bytes(out.size());
  return out;
}

List split(const std::string& s, const Value* sep, int64_t maxsplit) {
  tick_bytes(s.size());
  List out;
  if (!sep || sep->is_none()) {  // runs of whitespace, no empty parts
    size_t i = 0;
    while (true) {
      while (i < s.size() && std::strchr(kWs, s[i]) && s[i]) ++i;
      if (i >= s.size()) break;
      if (maxsplit >= 0 && int64_t(out.size()) == maxsplit) { out.push_back(Value(strip(s.substr(i), kWs, false, true))); break; }
      size_t j = i;
      while (j < s.size() && !(std::strchr(kWs, s[j]) && s[j])) ++j;
      out.push_back(Value(s.substr(i, j - i)));
      i = j;
    }
    return out;
  }
  if (!sep->is_string()) throw TemplateError("must be str or None, not " + std::string(sep->type_name()));
  const std::string& d = sep->str();
  if (d.empty()) throw TemplateError("empty separator");
  const TextFinder finder(d);
  size_t i = 0, at;
  while ((maxsplit < 0 || int64_t(out.size()) < maxsplit) && (at = finder.find(s, i)) != std::string::npos) {
    out.push_back(Value(s.substr(i, at - i)));
    i = at + d.size();
  }
  out.push_back(Value(s.substr(i)));
  return out;
}

List splitlines(const std::string& s) {
  List out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t nl = s.find('\n', i);
    out.push_back(Value(strip(s.substr(i, nl == std::string::npos ? std::string::npos : nl - i), "\r", false, true)));
    if (nl == std::string::npos) break;
    i = nl + 1;
  }
  return out;
}

std::string indent(const std::string& s, int64_t width, bool first, bool blank) {
  tick_bytes(s.size());
  const size_t lines = size_t(std::count(s.begin(), s.end(), '\n')) + 1;
  const size_t max = active_limits().max_string;
  const uint64_t w = uint64_t(std::max<int64_t>(0, width));
  if (w > max || (w > 0 && lines > (max - std::min(max, s.size())) / w)) throw LimitError("string longer than " + mib(max));
  const std::string pad(w, ' ');
  std::string out;
  size_t i = 0;
  bool at_first = true;
  while (i <= s.size()) {
    const size_t nl = s.find('\n', i);
    const size_t end = nl == std::string::npos ? s.size() : nl;
    if ((at_first ? first : true) && (blank || end > i)) out += pad;
    out.append(s, i, end - i);
    at_first = false;
    if (nl == std::string::npos) break;
    out += '\n';
    i = nl + 1;
  }
  tick_bytes(out.size());
  return out;
}

std::string join(const List& items, const std::string& sep) {
  const size_t max = active_limits().max_string;
  std::string out;
  bool first = true;
  for (const Value& x : items) {
    const std::string piece = x.to_str();
    if (piece.size() + (first ? 0 : sep.size()) > max - out.size()) throw LimitError("string longer than " + mib(max));
    tick_bytes(piece.size() + sep.size());
    if (!first) out += sep;
    out += piece;
    first = false;
  }
  return out;
}

}  // namespace camelid::jinja
