// Jinja template text -> Body. Two steps: split the source into text and tags (applying
// whitespace control and the trim_blocks/lstrip_blocks settings transformers renders with),
// then parse each tag's tokens by recursive descent with Jinja2's operator precedence. The
// recursion and the trees it builds are depth-limited (kMaxParseDepth): a hostile template of
// 100,000 nested parentheses or a 10^6-term sum is a syntax error, not a stack overflow.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "chat/jinja_ast.h"

namespace camelid::jinja {
namespace {

[[noreturn]] void syntax_error(int line, const std::string& msg) {
  throw TemplateError("template syntax error (line " + std::to_string(line) + "): " + msg);
}

struct Segment {
  enum Kind { Text, Var, Block } kind;
  std::string text;  // text, or a tag's inside
  int line;
};

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Where a {{ }} or {% %} tag closes: the first `close` outside a string literal, as jinja2's
// lexer reads the tag's tokens ({{ "}}" }} prints }}). npos if the tag (or a string) never ends.
size_t tag_end(const std::string& src, size_t p, const char* close) {
  for (size_t i = p; i < src.size(); ++i) {
    const char c = src[i];
    if (c == close[0] && i + 1 < src.size() && src[i + 1] == close[1]) return i;
    if (c != '"' && c != '\'') continue;
    for (++i; i < src.size() && src[i] != c; ++i)
      if (src[i] == '\\') ++i;
    if (i >= src.size()) return std::string::npos;
  }
  return std::string::npos;
}

std::vector<Segment> split_source(const std::string& src) {
  std::vector<Segment> out;
  size_t i = 0;
  int line = 1;
  bool strip_next = false, trim_newline = false;
  auto count_lines = [](const std::string& s, size_t b, size_t e) {
    int n = 0;
    for (size_t k = b; k < e; ++k) n += s[k] == '\n';
    return n;
  };
  while (i <= src.size()) {
    size_t open = src.find('{', i);
    while (open != std::string::npos && open + 1 < src.size() && src[open + 1] != '{' && src[open + 1] != '%' && src[open + 1] != '#')
      open = src.find('{', open + 1);
    if (open != std::string::npos && open + 1 >= src.size()) open = std::string::npos;
    std::string text = src.substr(i, open == std::string::npos ? std::string::npos : open - i);
    const int text_line = line;
    line += count_lines(src, i, open == std::string::npos ? src.size() : open);
    // Jinja2's "line starting" state: the template's start, or a tag whose trailing newline was
    // just removed; lstrip_blocks strips indentation only at the start of a line.
    bool line_start = out.empty() && i == 0;
    if (strip_next) {
      size_t k = 0;
      while (k < text.size() && is_ws(text[k])) ++k;
      line_start = k > 0 && text[k - 1] == '\n';
      text.erase(0, k);
    } else if (trim_newline) {
      if (text.compare(0, 1, "\n") == 0) text.erase(0, 1), line_start = true;
      else if (text.compare(0, 2, "\r\n") == 0) text.erase(0, 2), line_start = true;
    }
    if (open == std::string::npos) {
      if (!text.empty()) out.push_back({Segment::Text, text, text_line});
      break;
    }
    const char kind = src[open + 1];
    size_t p = open + 2;
    const bool minus_before = p < src.size() && src[p] == '-';
    const bool plus_before = p < src.size() && src[p] == '+';
    if (minus_before || plus_before) ++p;
    if (minus_before) {
      size_t e = text.size();
      while (e > 0 && is_ws(text[e - 1])) --e;
      text.resize(e);
    } else if (kind != '{' && !plus_before) {
      const size_t l_pos = text.rfind('\n') + 1;  // 0 when there is no newline
      if ((l_pos > 0 || line_start) && text.find_first_not_of(" \t", l_pos) == std::string::npos) text.resize(l_pos);
    }
    if (!text.empty()) out.push_back({Segment::Text, text, text_line});
    const char* close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    size_t end = kind == '#' ? src.find(close, p) : tag_end(src, p, close);
    if (end == std::string::npos) syntax_error(line, std::string("unclosed '{") + kind + "'");
    const bool minus_after = end > p && src[end - 1] == '-';
    std::string inner = src.substr(p, (minus_after ? end - 1 : end) - p);
    const int tag_line = line;
    line += count_lines(src, open, end + 2);
    i = end + 2;
    strip_next = minus_after;
    trim_newline = kind != '{';  // trim_blocks
    if (kind == '#') continue;
    // {% raw %}...{% endraw %}: the inside is text, tags and all.
    size_t a = 0;
    while (a < inner.size() && is_ws(inner[a])) ++a;
    size_t b = inner.size();
    while (b > a && is_ws(inner[b - 1])) --b;
    if (kind == '%' && inner.substr(a, b - a) == "raw") {
      size_t search = i, endraw = std::string::npos, endraw_close = 0;
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
      if (strip_next) { size_t k = 0; while (k < raw.size() && is_ws(raw[k])) ++k; raw.erase(0, k); }
      if (src[endraw + 2] == '-') { size_t e = raw.size(); while (e > 0 && is_ws(raw[e - 1])) --e; raw.resize(e); }
      if (!raw.empty()) out.push_back({Segment::Text, raw, line});
      line += count_lines(src, i, endraw_close + 2);
      strip_next = src[endraw_close - 1] == '-';
      trim_newline = true;
      i = endraw_close + 2;
      continue;
    }
    out.push_back({kind == '{' ? Segment::Var : Segment::Block, inner, tag_line});
  }
  return out;
}

// ---- tokens inside a tag ----

struct Token {
  enum Kind { Name, String, Int, Float, Op, End } kind;
  std::string text;
  int64_t i = 0;
  double d = 0;
};

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18)), out += char(0x80 | ((cp >> 12) & 0x3F)), out += char(0x80 | ((cp >> 6) & 0x3F)),
        out += char(0x80 | (cp & 0x3F));
  }
}

std::vector<Token> lex(const std::string& s, int line) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (is_ws(c)) { ++i; continue; }
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
        while (i < s.size() && std::isdigit(uint8_t(s[i]))) ++i;
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
      for (size_t k = b; k < i; ++k) if (s[k] != '_') num += s[k];
      Token t{is_float ? Token::Float : Token::Int, num};
      if (is_float) {
        t.d = std::strtod(num.c_str(), nullptr);
      } else {
        errno = 0;
        t.i = std::strtoll(num.c_str(), nullptr, 10);
        if (errno == ERANGE) syntax_error(line, "integer literal " + num.substr(0, 30) + " does not fit in 64 bits");
      }
      out.push_back(t);
    } else if (c == '"' || c == '\'') {
      std::string v;
      ++i;
      while (i < s.size() && s[i] != c) {
        if (s[i] == '\\' && i + 1 < s.size()) {
          const char e = s[++i];
          switch (e) {
            case 'n': v += '\n'; break;
            case 't': v += '\t'; break;
            case 'r': v += '\r'; break;
            case '\\': v += '\\'; break;
            case '\'': v += '\''; break;
            case '"': v += '"'; break;
            case 'a': v += '\a'; break;
            case 'b': v += '\b'; break;
            case 'f': v += '\f'; break;
            case 'v': v += '\v'; break;
            case '\n': break;  // a backslash before a newline joins the lines
            case 'x': case 'u': case 'U': {  // Python's \xNN \uNNNN \UNNNNNNNN
              const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
              if (i + n >= s.size() || !std::all_of(s.begin() + long(i) + 1, s.begin() + long(i + n) + 1, [](char h) { return std::isxdigit(uint8_t(h)); }))
                syntax_error(line, std::string("truncated \\") + e + " escape in a string");
              const uint32_t cp = uint32_t(std::stoul(s.substr(i + 1, n), nullptr, 16));
              if (cp > 0x10FFFF) syntax_error(line, "illegal Unicode character in a string");
              append_utf8(v, cp);
              i += n;
              break;
            }
            default:
              if (e >= '0' && e <= '7') {  // octal, up to 3 digits
                uint32_t cp = uint32_t(e - '0');
                for (int k = 0; k < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; ++k) cp = cp * 8 + uint32_t(s[++i] - '0');
                append_utf8(v, cp);
              } else {
                v += '\\';
                v += e;
              }
          }
          ++i;
        } else {
          v += s[i++];
        }
      }
      if (i >= s.size()) syntax_error(line, "unterminated string");
      ++i;
      out.push_back({Token::String, v});
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

// ---- parser ----

StmtPtr make_stmt(Stmt::Kind k, int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = k;
  s->line = line;
  return s;
}

class Parser {
 public:
  explicit Parser(std::vector<Segment> segs) : segs_(std::move(segs)) {}

  Body parse_all() {
    std::string stop;
    Body b = parse_body({}, &stop);
    return b;
  }

 private:
  // Statements until a block tag whose keyword is in `ends` (returned through *stop, tokens left
  // positioned after the keyword) or the end of the template.
  Body parse_body(const std::vector<std::string>& ends, std::string* stop) {
    Body body;
    while (pos_ < segs_.size()) {
      const Segment& s = segs_[pos_++];
      line_ = s.line;
      if (s.kind == Segment::Text) {
        auto st = make_stmt(Stmt::Kind::Text, s.line);
        st->text = s.text;
        body.push_back(std::move(st));
        continue;
      }
      toks_ = lex(s.text, s.line);
      t_ = 0;
      if (s.kind == Segment::Var) {
        auto st = make_stmt(Stmt::Kind::Output, s.line);
        st->expr = expression();
        expect_end();
        body.push_back(std::move(st));
        continue;
      }
      const std::string kw = name("a statement keyword");
      for (const std::string& e : ends)
        if (kw == e) { *stop = kw; return body; }
      Nest nest(this);
      body.push_back(statement(kw));
    }
    if (!ends.empty()) syntax_error(line_, "unexpected end of template, expected '" + ends.front() + "'");
    return body;
  }

  StmtPtr statement(const std::string& kw) {
    auto st = make_stmt(Stmt::Kind::Text, line_);
    std::string stop;
    if (kw == "if") {
      st->kind = Stmt::Kind::If;
      ExprPtr cond = expression();
      expect_end();
      while (true) {
        Body b = parse_body({"elif", "else", "endif"}, &stop);
        st->branches.emplace_back(std::move(cond), std::move(b));
        if (stop == "elif") { cond = expression(); expect_end(); continue; }
        if (stop == "else") {
          expect_end();
          st->branches.emplace_back(nullptr, parse_body({"endif"}, &stop));
        }
        expect_end();
        break;
      }
    } else if (kw == "for") {
      st->kind = Stmt::Kind::For;
      st->targets = target_names();
      if (name("'in'") != "in") syntax_error(line_, "expected 'in' in for loop");
      st->expr = ternary_free_or();
      if (accept_name("if")) st->filter = expression();
      accept_name("recursive");
      expect_end();
      st->body = parse_body({"else", "endfor"}, &stop);
      if (stop == "else") { expect_end(); st->else_body = parse_body({"endfor"}, &stop); }
      expect_end();
    } else if (kw == "set") {
      st->kind = Stmt::Kind::Set;
      const std::string first = name("a variable name");
      if (accept_op(".")) {
        st->set_attr = true;
        st->targets = {first, name("an attribute name")};
      } else {
        st->targets = {first};
        while (accept_op(",")) st->targets.push_back(name("a variable name"));
      }
      if (accept_op("=")) {
        st->expr = expression();
        if (peek_op(",")) {  // a, b = 1, 2
          auto tuple = make(Expr::Kind::List);
          tuple->tuple = true;
          tuple->args.push_back(std::move(st->expr));
          while (accept_op(",")) tuple->args.push_back(expression());
          st->expr = sealed(std::move(tuple));
        }
        expect_end();
      } else {
        expect_end();
        st->kind = Stmt::Kind::SetBlock;
        st->body = parse_body({"endset"}, &stop);
        expect_end();
      }
    } else if (kw == "macro") {
      st->kind = Stmt::Kind::Macro;
      st->text = name("a macro name");
      macro_params(*st);
      expect_end();
      macros_.push_back(st.get());
      st->body = parse_body({"endmacro"}, &stop);
      macros_.pop_back();
      expect_end();
    } else if (kw == "call") {
      // {% call(params) callee(args) %}body{% endcall %}: callee(args, caller=<body as a macro>)
      st->kind = Stmt::Kind::CallBlock;
      if (peek_op("(")) macro_params(*st);
      st->expr = expression();
      if (st->expr->kind != Expr::Kind::Call) syntax_error(line_, "expected a call after {% call %}");
      expect_end();
      macros_.push_back(st.get());
      st->body = parse_body({"endcall"}, &stop);
      macros_.pop_back();
      expect_end();
    } else if (kw == "filter") {
      // {% filter f(args)|g %}body{% endfilter %}: the rendered body through the filters
      st->kind = Stmt::Kind::FilterBlock;
      do {
        auto f = make(Expr::Kind::Filter);
        f->name = name("a filter name");
        f->args.push_back(nullptr);
        if (peek_op("(")) call_args(*f);
        st->filters.push_back(sealed(std::move(f)));
      } while (accept_op("|"));
      expect_end();
      st->body = parse_body({"endfilter"}, &stop);
      expect_end();
    } else if (kw == "break" || kw == "continue") {
      st->kind = kw == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue;
      expect_end();
    } else if (kw == "generation") {
      // transformers' {% generation %} marks assistant text; it renders its body unchanged.
      st->kind = Stmt::Kind::Scope;
      expect_end();
      st->body = parse_body({"endgeneration"}, &stop);
      expect_end();
    } else {
      syntax_error(line_, "unknown tag '" + kw + "'");
    }
    return st;
  }

  void macro_params(Stmt& st) {
    expect_op("(");
    while (!accept_op(")")) {
      std::string p = name("a parameter name");
      ExprPtr def;
      if (accept_op("=")) def = expression();
      st.params.emplace_back(p, std::move(def));
      if (!accept_op(",")) { expect_op(")"); break; }
    }
  }

  std::vector<std::string> target_names() {
    std::vector<std::string> names;
    const bool paren = accept_op("(");
    names.push_back(name("a loop variable"));
    while (accept_op(",")) names.push_back(name("a loop variable"));
    if (paren) expect_op(")");
    return names;
  }

  // ---- expressions, lowest precedence first ----
  ExprPtr expression() {
    Nest nest(this);
    ExprPtr e = ternary_free_or();
    if (accept_name("if")) {
      auto c = make(Expr::Kind::Cond);
      ExprPtr cond = ternary_free_or();
      ExprPtr other;
      if (accept_name("else")) other = expression();
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(other));
      return sealed(std::move(c));
    }
    return e;
  }
  ExprPtr ternary_free_or() {
    ExprPtr e = and_expr();
    while (accept_name("or")) e = binary("or", std::move(e), and_expr());
    return e;
  }
  ExprPtr and_expr() {
    ExprPtr e = not_expr();
    while (accept_name("and")) e = binary("and", std::move(e), not_expr());
    return e;
  }
  ExprPtr not_expr() {
    if (accept_name("not")) {
      Nest nest(this);
      auto u = make(Expr::Kind::Unary);
      u->name = "not";
      u->args.push_back(not_expr());
      return sealed(std::move(u));
    }
    return compare();
  }
  ExprPtr compare() {
    ExprPtr e = math1();
    while (true) {
      if (peek().kind == Token::Op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                       peek().text == ">" || peek().text == "<=" || peek().text == ">=")) {
        const std::string op = toks_[t_++].text;
        e = binary(op, std::move(e), math1());
      } else if (accept_name("in")) {
        e = binary("in", std::move(e), math1());
      } else if (peek().kind == Token::Name && peek().text == "not" && t_ + 1 < toks_.size() &&
                 toks_[t_ + 1].kind == Token::Name && toks_[t_ + 1].text == "in") {
        t_ += 2;
        e = binary("not in", std::move(e), math1());
      } else {
        return e;
      }
    }
  }
  ExprPtr math1() {
    ExprPtr e = concat();
    while (peek_op("+") || peek_op("-")) {
      const std::string op = toks_[t_++].text;
      e = binary(op, std::move(e), concat());
    }
    return e;
  }
  ExprPtr concat() {
    ExprPtr e = math2();
    while (accept_op("~")) e = binary("~", std::move(e), math2());
    return e;
  }
  ExprPtr math2() {
    ExprPtr e = power();
    while (peek_op("*") || peek_op("/") || peek_op("//") || peek_op("%")) {
      const std::string op = toks_[t_++].text;
      e = binary(op, std::move(e), power());
    }
    return e;
  }
  ExprPtr power() {
    ExprPtr e = unary(true);
    while (accept_op("**")) e = binary("**", std::move(e), unary(true));
    return e;
  }
  ExprPtr unary(bool with_filter) {
    ExprPtr e;
    if (peek_op("-") || peek_op("+")) {
      Nest nest(this);
      auto u = make(Expr::Kind::Unary);
      u->name = toks_[t_++].text;
      u->args.push_back(unary(false));
      e = sealed(std::move(u));
    } else {
      e = primary();
    }
    e = postfix(std::move(e));
    if (with_filter) e = filters(std::move(e));
    return e;
  }
  ExprPtr primary() {
    const Token tok = peek();
    if (tok.kind == Token::End) syntax_error(line_, "unexpected end of expression");
    ++t_;
    if (tok.kind == Token::String) {
      std::string s = tok.text;
      while (peek().kind == Token::String) s += toks_[t_++].text;  // "a" "b" concatenates
      return literal(Value(s));
    }
    if (tok.kind == Token::Int) return literal(Value(tok.i));
    if (tok.kind == Token::Float) return literal(Value(tok.d));
    if (tok.kind == Token::Name) {
      if (tok.text == "true" || tok.text == "True") return literal(Value(true));
      if (tok.text == "false" || tok.text == "False") return literal(Value(false));
      if (tok.text == "none" || tok.text == "None") return literal(Value::none());
      auto n = make(Expr::Kind::Name);
      n->name = tok.text;
      if (!macros_.empty()) {
        Stmt& m = *macros_.back();
        m.uses_varargs |= tok.text == "varargs";
        m.uses_kwargs |= tok.text == "kwargs";
        m.uses_caller |= tok.text == "caller";
      }
      return n;
    }
    if (tok.text == "(") {
      if (accept_op(")")) {
        auto empty = make(Expr::Kind::List);
        empty->tuple = true;
        return empty;
      }
      ExprPtr e = expression();
      if (peek_op(",")) {
        auto tuple = make(Expr::Kind::List);
        tuple->tuple = true;
        tuple->args.push_back(std::move(e));
        while (accept_op(",") && !peek_op(")")) tuple->args.push_back(expression());
        e = sealed(std::move(tuple));
      }
      expect_op(")");
      return e;
    }
    if (tok.text == "[") {
      auto l = make(Expr::Kind::List);
      while (!accept_op("]")) {
        l->args.push_back(expression());
        if (!accept_op(",")) { expect_op("]"); break; }
      }
      return sealed(std::move(l));
    }
    if (tok.text == "{") {
      auto d = make(Expr::Kind::Dict);
      while (!accept_op("}")) {
        d->args.push_back(expression());
        expect_op(":");
        d->args.push_back(expression());
        if (!accept_op(",")) { expect_op("}"); break; }
      }
      return sealed(std::move(d));
    }
    syntax_error(line_, "unexpected '" + tok.text + "'");
  }
  ExprPtr postfix(ExprPtr e) {
    while (true) {
      if (accept_op(".")) {
        auto a = make(Expr::Kind::Attr);
        a->name = peek().kind == Token::Int ? std::to_string(toks_[t_++].i) : name("an attribute name");
        a->args.push_back(std::move(e));
        e = sealed(std::move(a));
      } else if (accept_op("[")) {
        ExprPtr parts[3];
        bool slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!peek_op(":") && !peek_op("]")) parts[k] = expression();
          if (k < 2 && accept_op(":")) { slice = true; continue; }
          break;
        }
        expect_op("]");
        auto it = make(slice ? Expr::Kind::Slice : Expr::Kind::Item);
        it->args.push_back(std::move(e));
        if (!slice && !parts[0]) syntax_error(line_, "empty subscript");
        it->args.push_back(std::move(parts[0]));
        if (slice) it->args.push_back(std::move(parts[1])), it->args.push_back(std::move(parts[2]));
        e = sealed(std::move(it));
      } else if (peek_op("(")) {
        auto c = make(Expr::Kind::Call);
        c->args.push_back(std::move(e));
        call_args(*c);
        e = sealed(std::move(c));
      } else {
        return e;
      }
    }
  }
  ExprPtr filters(ExprPtr e) {
    while (true) {
      if (accept_op("|")) {
        auto f = make(Expr::Kind::Filter);
        f->name = name("a filter name");
        f->args.push_back(std::move(e));
        if (peek_op("(")) call_args(*f);
        e = sealed(std::move(f));
      } else if (accept_name("is")) {
        auto t = make(Expr::Kind::Test);
        t->negated = accept_name("not");
        t->name = name("a test name");
        t->args.push_back(std::move(e));
        // As jinja2: `is test(args)`, or one argument without parentheses (`is divisibleby 3`,
        // `is in [1, 2]`, `is sameas none`), a primary with its postfix operators.
        const Token& nx = peek();
        const bool name_arg = nx.kind == Token::Name && nx.text != "else" && nx.text != "or" && nx.text != "and";
        if (peek_op("(")) call_args(*t);
        else if (nx.kind == Token::String || nx.kind == Token::Int || nx.kind == Token::Float || name_arg || peek_op("[") || peek_op("{")) {
          if (nx.kind == Token::Name && nx.text == "is") syntax_error(line_, "You cannot chain multiple tests with is");
          t->args.push_back(postfix(primary()));
        }
        e = sealed(std::move(t));
      } else {
        return e;
      }
    }
  }
  void call_args(Expr& call) {
    expect_op("(");
    while (!accept_op(")")) {
      if (peek().kind == Token::Name && t_ + 1 < toks_.size() && toks_[t_ + 1].kind == Token::Op && toks_[t_ + 1].text == "=") {
        std::string k = toks_[t_].text;
        t_ += 2;
        call.kwargs.emplace_back(k, expression());
      } else {
        call.args.push_back(expression());
      }
      if (!accept_op(",")) { expect_op(")"); break; }
    }
  }

  // ---- helpers ----
  ExprPtr make(Expr::Kind k) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = line_;
    return e;
  }
  ExprPtr literal(Value v) {
    auto e = make(Expr::Kind::Literal);
    e->value = std::move(v);
    return e;
  }
  ExprPtr binary(const std::string& op, ExprPtr a, ExprPtr b) {
    auto e = make(Expr::Kind::Binary);
    e->name = op;
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return sealed(std::move(e));
  }
  // A finished node: its depth, which bounds the evaluator's recursion (and the destructor's).
  // Chains (a+b+..., x|f|g|..., a.b.c...) are parsed by loops, so this is their only limit.
  ExprPtr sealed(ExprPtr e) {
    int d = 0;
    for (const ExprPtr& c : e->args)
      if (c) d = std::max(d, c->depth);
    for (const auto& kv : e->kwargs) d = std::max(d, kv.second->depth);
    e->depth = d + 1;
    if (e->depth > kMaxParseDepth) too_deep();
    return e;
  }
  [[noreturn]] void too_deep() {
    throw LimitError("template syntax error (line " + std::to_string(line_) + "): nested deeper than " +
                     std::to_string(kMaxParseDepth) + " levels");
  }
  // One level of the parser's recursion (a statement inside a block, a parenthesised expression,
  // a unary operator): bounded so that the parser's own stack is.
  struct Nest {
    explicit Nest(Parser* p) : p(p) {
      if (++p->depth_ > kMaxParseDepth) p->too_deep();
    }
    ~Nest() { --p->depth_; }
    Parser* p;
  };
  const Token& peek() const { return toks_[t_]; }
  bool peek_op(const char* op) const { return peek().kind == Token::Op && peek().text == op; }
  bool accept_op(const char* op) {
    if (!peek_op(op)) return false;
    ++t_;
    return true;
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) syntax_error(line_, std::string("expected '") + op + "', got '" + (peek().kind == Token::End ? "end of tag" : peek().text) + "'");
  }
  bool accept_name(const char* n) {
    if (peek().kind != Token::Name || peek().text != n) return false;
    ++t_;
    return true;
  }
  std::string name(const char* what) {
    if (peek().kind != Token::Name) syntax_error(line_, std::string("expected ") + what + ", got '" + (peek().kind == Token::End ? "end of tag" : peek().text) + "'");
    return toks_[t_++].text;
  }
  void expect_end() {
    if (peek().kind != Token::End) syntax_error(line_, "unexpected '" + peek().text + "' at the end of the tag");
  }

  std::vector<Segment> segs_;
  size_t pos_ = 0;
  std::vector<Token> toks_;
  size_t t_ = 0;
  int line_ = 1;
  int depth_ = 0;
  std::vector<Stmt*> macros_;  // the macro / call block bodies being parsed, innermost last
};

}  // namespace

Body parse_template(const std::string& source) {
  if (source.size() > kMaxSourceBytes)
    throw LimitError("template source is longer than " + mib(kMaxSourceBytes) + " (" + std::to_string(source.size()) + " bytes)");
  // As jinja2's lexer: every line ending reads as "\n" (text and string literals alike), and one
  // newline at the very end of the template is dropped (keep_trailing_newline=False).
  std::string src;
  src.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] != '\r') src += source[i];
    else if (i + 1 >= source.size() || source[i + 1] != '\n') src += '\n';
  }
  if (!src.empty() && src.back() == '\n') src.pop_back();
  return Parser(split_source(src)).parse_all();
}

}  // namespace camelid::jinja
