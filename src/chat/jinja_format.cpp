// Markup escaping and Python's printf-style formatting (str % args, |format), bounded by the
// render's limits: each conversion's width and precision are capped, the result is sized as it grows.
#include <cmath>
#include <cstdio>

#include "chat/jinja.h"
#include "chat/jinja_text.h"

namespace camelid::jinja {

std::string html_escape(const std::string& s) {
  tick_bytes(s.size());
  check_string_size(s.size());
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  check_string_size(out.size());
  return out;
}

Value escape_value(const Value& v) { return v.is_safe() ? v : Value::markup(html_escape(v.to_str())); }

namespace {

// One conversion: flags, width, precision and type of a %-spec, applied to one value.
std::string convert(const std::string& flags, int width, int prec, char type, const Value& v, bool markup) {
  std::string body;
  if (type == 's' || type == 'r') {
    std::string text = type == 's' ? v.to_str() : v.repr();
    if (markup && !v.is_safe()) text = html_escape(text);
    if (prec >= 0) text = text.substr(0, char_offset(text, size_t(prec)));
    body = std::move(text);
  } else if (type == 'c') {
    if (v.is_string() && char_count(v.str()) == 1) body = v.str();
    else bad("%c requires an int or a unicode character");
  } else {
    if (!v.is_number() && v.kind() != Value::Kind::Bool)
      bad(std::string("%") + type + " format: a real number is required, not " + v.type_name());
    char spec[32], buf[1024];  // enough for any double in %f with precision <= 400
    const std::string f = flags.substr(0, 5);
    if (type == 'd' || type == 'i' || type == 'x' || type == 'X' || type == 'o') {
      if (v.kind() == Value::Kind::Float && (type != 'd' && type != 'i')) bad(std::string("%") + type + " format: an integer is required, not float");
      const int64_t i = v.as_int();  // a float truncates, as Python's %d
      // Python prints a negative hex/octal number as '-' and its magnitude.
      const bool neg = i < 0 && type != 'd' && type != 'i';
      const unsigned long long mag = neg ? 0ULL - (unsigned long long)i : (unsigned long long)i;
      std::snprintf(spec, sizeof spec, "%%%s%s%s", f.c_str(), prec >= 0 ? ("." + std::to_string(prec)).c_str() : "",
                    type == 'd' || type == 'i' ? "lld" : type == 'x' ? "llx" : type == 'X' ? "llX" : "llo");
      if (type == 'd' || type == 'i') std::snprintf(buf, sizeof buf, spec, (long long)i);
      else std::snprintf(buf, sizeof buf, spec, mag);
      if (neg) body = "-";
    } else {
      std::snprintf(spec, sizeof spec, "%%%s.%d%c", f.c_str(), prec >= 0 ? prec : 6, type);
      std::snprintf(buf, sizeof buf, spec, v.as_double());
    }
    body += buf;
  }
  const size_t n = char_count(body);
  if (width > 0 && size_t(width) > n) {
    const std::string pad(size_t(width) - n, flags.find('0') != std::string::npos && type != 's' && type != 'r' ? '0' : ' ');
    if (flags.find('-') != std::string::npos) body += pad;
    else if (pad[0] == '0' && !body.empty() && (body[0] == '-' || body[0] == '+')) body.insert(1, pad);
    else body.insert(0, pad);
  }
  return body;
}

}  // namespace

Value py_format(const Value& fmt_v, const Value& args) {
  const std::string& fmt = fmt_v.str();
  const bool markup = fmt_v.is_safe();
  const List positional = args.is_tuple() ? args.list() : List{args};  // a list is one argument, as in Python
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    tick(1);
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) bad("incomplete format");
    const Value* arg = nullptr;
    Value keyed;
    if (fmt[i] == '(') {
      const size_t close = fmt.find(')', i);
      if (close == std::string::npos) bad("incomplete format key");
      if (!args.is_dict()) bad("format requires a mapping");
      keyed = args.get(fmt.substr(i + 1, close - i - 1));
      if (keyed.is_undefined()) bad("format key '" + fmt.substr(i + 1, close - i - 1) + "' not found");
      arg = &keyed;
      i = close + 1;
    }
    std::string flags;
    while (i < fmt.size() && std::string("-+ 0#").find(fmt[i]) != std::string::npos) flags += fmt[i++];
    auto number = [&]() {
      int n = 0;
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') n = std::min(n * 10 + (fmt[i++] - '0'), 4096);
      return n;
    };
    const int width = number();
    int prec = -1;
    if (i < fmt.size() && fmt[i] == '.') ++i, prec = std::min(number(), 400);
    if (i >= fmt.size()) bad("incomplete format");
    const char type = fmt[i];
    if (type == '%') {
      out += '%';
      continue;
    }
    if (std::string("srdifFeEgGxXoc").find(type) == std::string::npos) bad(std::string("unsupported format character '") + type + "'");
    if (!arg) {
      if (next >= positional.size()) bad("not enough arguments for format string");
      arg = &positional[next++];
    }
    const std::string piece = convert(flags, width, prec, type, *arg, markup);
    check_string_size(out.size() + piece.size());
    out += piece;
  }
  if (!args.is_dict() && next < positional.size()) bad("not all arguments converted during string formatting");
  return markup ? Value::markup(std::move(out)) : Value(std::move(out));
}

}  // namespace camelid::jinja
