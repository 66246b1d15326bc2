#pragma once
// Text helpers of the built-ins (jinja_text.cpp): Python's str methods on UTF-8, each linear in
// its input and output, charging the render's budget and sized before it builds (jinja_sandbox.h).
#include <cstdint>
#include <string>
#include <vector>

#include "chat/jinja_value.h"

namespace camelid::jinja {

[[noreturn]] inline void bad(const std::string& msg) { throw TemplateError(msg); }

// Arguments of built-ins (positional i or keyword name): an int (def if absent or not a number),
// a string (TemplateError if absent or not a string).
int64_t int_arg(const Args& a, size_t i, const char* name, int64_t def);
std::string str_arg(const Args& a, size_t i, const char* name);

extern const char* const kWs;  // Python's whitespace for strip() and split()

// Substring search in linear time whatever the texts (std::string::find is O(n*m) at worst:
// 'aaa...a' searched for 'aaa...ab'), charging the budget for what it reads.
class TextFinder {
 public:
  explicit TextFinder(const std::string& needle);
  size_t find(const std::string& hay, size_t from = 0) const;  // npos if absent; needle "" is found at `from`

 private:
  const std::string& needle_;
  std::vector<uint32_t> border_;  // KMP failure function, for needles longer than kShort
  static constexpr size_t kShort = 16;
};

size_t char_count(const std::string& s);                 // code points
size_t char_offset(const std::string& s, size_t index);  // byte offset of code point `index` (or s.size())
std::string strip(const std::string& s, const std::string& chars, bool left, bool right);
std::string lower(std::string s);
std::string upper(std::string s);
std::string title(std::string s);
std::string capitalize(std::string s);
std::string replace(const std::string& s, const std::string& from, const std::string& to, int64_t count = -1);
List split(const std::string& s, const Value* sep, int64_t maxsplit);
List splitlines(const std::string& s);
std::string indent(const std::string& s, int64_t width, bool first, bool blank);
// Markup's escape(): & < > " ' as HTML entities. A safe (Markup) value passes unchanged.
std::string html_escape(const std::string& s);
Value escape_value(const Value& v);  // Markup of v: unchanged if safe, else escaped to_str()
// Python's printf-style formatting (str % args and the format filter): %s %r %d %i %f %F %e %E
// %g %G %x %X %o %c %% with flags, width and precision; %(key)s with a dict. Markup escapes args.
Value py_format(const Value& fmt, const Value& args);
// Joins the items' str() with sep, within max_string.
std::string join(const List& items, const std::string& sep);

}  // namespace camelid::jinja
