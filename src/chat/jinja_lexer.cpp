// Splitting a template into text and tags, and tags into tokens, as jinja2's lexer does with
// trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False.
#include "chat/jinja_lexer.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "chat/jinja_value.h"

namespace camelid::jinja {

void syntax_error(int line, const std::string& msg) {
  throw TemplateError("template syntax error (line " + std::to_string(line) + "): " + msg);
}

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

int count_lines(const std::string& s, size_t b, size_t e) {
  int n = 0;
  for (size_t k = b; k < e && k < s.size(); ++k) n += s[k] == '\n';
  return n;
}

// jinja2 reads "\r\n", "\r" and "\n" all as "\n" and drops one newline at the very end.
std::string normalize_newlines(const std::string& src) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out += '\n';
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out += src[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Where the tag whose inside starts at p ends: the position of its closing delimiter, with
// *marker set to '-' or '+' when one stands right before it (then the inside ends at pos - 1).
size_t find_close(const std::string& src, size_t p, char kind, int line, char* marker) {
  *marker = 0;
  if (kind == '#') {
    const size_t end = src.find("#}", p);
    if (end == std::string::npos) syntax_error(line, "unclosed comment, missing '#}'");
    if (end > p && (src[end - 1] == '-' || src[end - 1] == '+')) *marker = src[end - 1];
    return end;
  }
  const char closer = kind == '{' ? '}' : '%';
  int depth = 0;
  for (size_t i = p; i < src.size(); ++i) {
    const char c = src[i];
    if (c == '\'' || c == '"') {
      size_t k = i + 1;
      while (k < src.size() && src[k] != c) k += src[k] == '\\' ? 2 : 1;
      if (k >= src.size()) syntax_error(line + count_lines(src, p, i), "unterminated string");
      i = k;
      continue;
    }
    if (depth == 0) {
      if ((c == '-' || c == '+') && i + 2 < src.size() && src[i + 1] == closer && src[i + 2] == '}') {
        *marker = c;
        return i + 1;
      }
      if (c == closer && i + 1 < src.size() && src[i + 1] == '}') return i;
    }
    if (c == '(' || c == '[' || c == '{') ++depth;
    else if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
  }
  syntax_error(line, std::string("unclosed tag, missing '") + closer + "}'");
}

std::string trim_copy(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && is_ws(s[a])) ++a;
  while (b > a && is_ws(s[b - 1])) --b;
  return s.substr(a, b - a);
}

// lstrip_blocks: whitespace between the start of the line and a block tag goes.
void lstrip_line(std::string& text, bool line_start) {
  const size_t l_pos = text.rfind('\n') + 1;  // 0 when there is no newline
  if ((l_pos > 0 || line_start) && text.find_first_not_of(" \t", l_pos) == std::string::npos) text.resize(l_pos);
}

void rstrip_all(std::string& text) {
  size_t e = text.size();
  while (e > 0 && is_ws(text[e - 1])) --e;
  text.resize(e);
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// Python's unicode-escape decoding of a string literal's inside.
std::string decode_escapes(const std::string& s, size_t b, size_t e, int line) {
  std::string v;
  for (size_t i = b; i < e; ++i) {
    if (s[i] != '\\' || i + 1 >= e) {
      v += s[i];
      continue;
    }
    const char c = s[++i];
    auto hex = [&](int digits) {
      if (i + size_t(digits) >= e) syntax_error(line, "truncated \\x/\\u escape");
      uint32_t cp = 0;
      for (int k = 1; k <= digits; ++k) {
        const char h = s[i + size_t(k)];
        if (!std::isxdigit(uint8_t(h))) syntax_error(line, "truncated \\x/\\u escape");
        cp = cp * 16 + uint32_t(std::isdigit(uint8_t(h)) ? h - '0' : std::tolower(uint8_t(h)) - 'a' + 10);
      }
      i += size_t(digits);
      if (cp > 0x10FFFF) syntax_error(line, "illegal Unicode character in escape");
      append_utf8(v, cp);
    };
    switch (c) {
      case '\n': break;  // line continuation
      case 'n': v += '\n'; break;
      case 't': v += '\t'; break;
      case 'r': v += '\r'; break;
      case 'a': v += '\a'; break;
      case 'b': v += '\b'; break;
      case 'f': v += '\f'; break;
      case 'v': v += '\v'; break;
      case '\\': v += '\\'; break;
      case '\'': v += '\''; break;
      case '"': v += '"'; break;
      case 'x': hex(2); break;
      case 'u': hex(4); break;
      case 'U': hex(8); break;
      default:
        if (c >= '0' && c <= '7') {
          uint32_t cp = uint32_t(c - '0');
          for (int k = 0; k < 2 && i + 1 < e && s[i + 1] >= '0' && s[i + 1] <= '7'; ++k) cp = cp * 8 + uint32_t(s[++i] - '0');
          append_utf8(v, cp);
        } else {
          v += '\\';
          v += c;
        }
    }
  }
  return v;
}

}  // namespace

std::vector<Segment> split_source(const std::string& source) {
  const std::string src = normalize_newlines(source);
  std::vector<Segment> out;
  size_t i = 0;
  int line = 1;
  bool strip_next = false;    // the previous tag ended with '-': strip leading whitespace
  bool trim_newline = false;  // trim_blocks: the previous block/comment tag eats one newline
  bool line_start = true;     // jinja2's "line starting" state, for lstrip_blocks
  while (i <= src.size()) {
    size_t open = src.find('{', i);
    while (open != std::string::npos && open + 1 < src.size() && src[open + 1] != '{' && src[open + 1] != '%' && src[open + 1] != '#')
      open = src.find('{', open + 1);
    if (open != std::string::npos && open + 1 >= src.size()) open = std::string::npos;
    std::string text = src.substr(i, open == std::string::npos ? std::string::npos : open - i);
    const int text_line = line;
    line += count_lines(src, i, open == std::string::npos ? src.size() : open);
    if (strip_next) {
      size_t k = 0;
      while (k < text.size() && is_ws(text[k])) ++k;
      line_start = k > 0 && text[k - 1] == '\n';
      text.erase(0, k);
    } else if (trim_newline && text.compare(0, 1, "\n") == 0) {
      text.erase(0, 1);
      line_start = true;
    }
    if (open == std::string::npos) {
      if (!text.empty()) out.push_back({Segment::Text, text, text_line});
      break;
    }
    const char kind = src[open + 1];
    size_t p = open + 2;
    const char before = p < src.size() && (src[p] == '-' || src[p] == '+') ? src[p] : 0;
    if (before) ++p;
    if (before == '-') rstrip_all(text);
    else if (kind != '{' && before != '+') lstrip_line(text, line_start);
    if (!text.empty()) out.push_back({Segment::Text, text, text_line});
    const int tag_line = line;
    char after = 0;
    const size_t end = find_close(src, p, kind, tag_line, &after);
    std::string inner = src.substr(p, (after ? end - 1 : end) - p);
    line += count_lines(src, open, end + 2);
    i = end + 2;
    strip_next = after == '-';
    trim_newline = kind != '{' && after != '+';
    line_start = false;
    if (kind == '#') continue;
    if (kind == '%' && trim_copy(inner) == "raw") {
      // {% raw %}...{% endraw %}: the inside is text, tags and all. No trim_blocks after raw.
      size_t search = i, endraw = std::string::npos, endraw_close = std::string::npos;
      while ((endraw = src.find("{%", search)) != std::string::npos) {
        size_t q = endraw + 2;
        if (q < src.size() && (src[q] == '-' || src[q] == '+')) ++q;
        while (q < src.size() && is_ws(src[q])) ++q;
        if (src.compare(q, 6, "endraw") == 0) {
          endraw_close = src.find("%}", q);
          break;
        }
        search = endraw + 2;
      }
      if (endraw == std::string::npos || endraw_close == std::string::npos) syntax_error(tag_line, "missing {% endraw %}");
      std::string raw = src.substr(i, endraw - i);
      if (strip_next) {
        size_t k = 0;
        while (k < raw.size() && is_ws(raw[k])) ++k;
        raw.erase(0, k);
      }
      const char raw_before = src[endraw + 2];
      if (raw_before == '-') rstrip_all(raw);
      else if (raw_before != '+') lstrip_line(raw, false);
      if (!raw.empty()) out.push_back({Segment::Text, raw, line});
      line += count_lines(src, i, endraw_close + 2);
      const char raw_after = src[endraw_close - 1];
      strip_next = raw_after == '-';
      trim_newline = raw_after != '+';
      i = endraw_close + 2;
      continue;
    }
    out.push_back({kind == '{' ? Segment::Var : Segment::Block, inner, tag_line});
  }
  return out;
}

std::vector<Token> lex(const std::string& s, int line) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (is_ws(c)) {
      line += c == '\n';
      ++i;
      continue;
    }
    if (std::isalpha(uint8_t(c)) || c == '_') {
      size_t b = i;
      while (i < s.size() && (std::isalnum(uint8_t(s[i])) || s[i] == '_')) ++i;
      out.push_back({Token::Name, s.substr(b, i - b)});
    } else if (std::isdigit(uint8_t(c))) {
      size_t b = i;
      bool is_float = false;
      while (i < s.size() && (std::isdigit(uint8_t(s[i])) || s[i] == '_')) ++i;
      if (i + 1 < s.size() && s[i] == '.' && std::isdigit(uint8_t(s[i + 1]))) {
        is_float = true;
        ++i;
        while (i < s.size() && (std::isdigit(uint8_t(s[i])) || s[i] == '_')) ++i;
      }
      if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        size_t k = i + 1;
        if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
        if (k < s.size() && std::isdigit(uint8_t(s[k]))) {
          is_float = true;
          i = k;
          while (i < s.size() && std::isdigit(uint8_t(s[i]))) ++i;
        }
      }
      std::string num;
      for (size_t k = b; k < i; ++k)
        if (s[k] != '_') num += s[k];
      Token t{is_float ? Token::Float : Token::Int, num};
      if (is_float) {
        t.d = std::strtod(num.c_str(), nullptr);
      } else {
        errno = 0;
        t.i = std::strtoll(num.c_str(), nullptr, 10);
        if (errno == ERANGE) syntax_error(line, "integer literal too large: " + num);
      }
      out.push_back(t);
    } else if (c == '"' || c == '\'') {
      size_t k = i + 1;
      while (k < s.size() && s[k] != c) k += s[k] == '\\' ? 2 : 1;
      if (k >= s.size()) syntax_error(line, "unterminated string");
      out.push_back({Token::String, decode_escapes(s, i + 1, k, line)});
      line += count_lines(s, i, k);
      i = k + 1;
    } else {
      static const char* ops[] = {"//", "**", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ".", ",", ":",
                                  "|", "~", "+", "-", "*", "/", "%", "<", ">", "="};
      bool found = false;
      for (const char* op : ops) {
        const size_t n = std::char_traits<char>::length(op);
        if (s.compare(i, n, op) == 0) {
          out.push_back({Token::Op, op});
          i += n;
          found = true;
          break;
        }
      }
      if (!found) syntax_error(line, std::string("unexpected character '") + c + "'");
    }
  }
  out.push_back({Token::End, ""});
  return out;
}

}  // namespace camelid::jinja
