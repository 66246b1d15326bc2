// Jinja template text -> Body: the segments and tokens of jinja_lexer.cpp, parsed by recursive
// descent with Jinja2's operator precedence.
#include <cctype>
#include <cstdlib>

#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace camelid::jinja {
namespace {

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
      body.push_back(statement(kw));
    }
    if (!ends.empty()) syntax_error(line_, "unexpected end of template, expected '" + ends.front() + "'");
    return body;
  }

  StmtPtr statement(const std::string& kw) {
    DepthGuard guard(this);
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
          auto tuple = tuple_expr();
          tuple->args.push_back(std::move(st->expr));
          while (accept_op(",")) tuple->args.push_back(expression());
          st->expr = std::move(tuple);
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
      expect_op("(");
      while (!accept_op(")")) {
        std::string p = name("a parameter name");
        ExprPtr def;
        if (accept_op("=")) def = expression();
        st->params.emplace_back(p, std::move(def));
        if (!accept_op(",")) { expect_op(")"); break; }
      }
      expect_end();
      st->body = parse_body({"endmacro"}, &stop);
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
    ExprPtr e = ternary_free_or();
    if (accept_name("if")) {
      auto c = make(Expr::Kind::Cond);
      ExprPtr cond = ternary_free_or();
      ExprPtr other;
      if (accept_name("else")) other = expression();
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(other));
      return c;
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
      auto u = make(Expr::Kind::Unary);
      u->name = "not";
      u->args.push_back(not_expr());
      return u;
    }
    return compare();
  }
  // Comparisons chain as in Python: a < b <= c means a < b and b <= c (b evaluated once).
  ExprPtr compare() {
    ExprPtr e = math1();
    ExprPtr chain;
    while (true) {
      std::string op;
      if (peek().kind == Token::Op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                       peek().text == ">" || peek().text == "<=" || peek().text == ">=")) {
        op = toks_[t_++].text;
      } else if (accept_name("in")) {
        op = "in";
      } else if (peek().kind == Token::Name && peek().text == "not" && t_ + 1 < toks_.size() &&
                 toks_[t_ + 1].kind == Token::Name && toks_[t_ + 1].text == "in") {
        t_ += 2;
        op = "not in";
      } else {
        return chain ? std::move(chain) : std::move(e);
      }
      if (!chain) {
        chain = make(Expr::Kind::Compare);
        chain->args.push_back(std::move(e));
      }
      chain->ops.push_back(op);
      chain->args.push_back(math1());
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
    DepthGuard guard(this);
    ExprPtr e;
    if (peek_op("-") || peek_op("+")) {
      auto u = make(Expr::Kind::Unary);
      u->name = toks_[t_++].text;
      u->args.push_back(unary(false));
      e = std::move(u);
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
      return n;
    }
    if (tok.text == "(") {
      if (accept_op(")")) return tuple_expr();  // empty tuple
      ExprPtr e = expression();
      if (peek_op(",")) {
        auto tuple = tuple_expr();
        tuple->args.push_back(std::move(e));
        while (accept_op(",") && !peek_op(")")) tuple->args.push_back(expression());
        e = std::move(tuple);
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
      return l;
    }
    if (tok.text == "{") {
      auto d = make(Expr::Kind::Dict);
      while (!accept_op("}")) {
        d->args.push_back(expression());
        expect_op(":");
        d->args.push_back(expression());
        if (!accept_op(",")) { expect_op("}"); break; }
      }
      return d;
    }
    syntax_error(line_, "unexpected '" + tok.text + "'");
  }
  ExprPtr postfix(ExprPtr e) {
    while (true) {
      if (accept_op(".")) {
        if (peek().kind == Token::Int) {  // x.0 is x[0]
          auto it = make(Expr::Kind::Item);
          it->args.push_back(std::move(e));
          it->args.push_back(literal(Value(toks_[t_++].i)));
          e = std::move(it);
          continue;
        }
        auto a = make(Expr::Kind::Attr);
        a->name = name("an attribute name");
        a->args.push_back(std::move(e));
        e = std::move(a);
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
        e = std::move(it);
      } else if (peek_op("(")) {
        auto c = make(Expr::Kind::Call);
        c->args.push_back(std::move(e));
        call_args(*c);
        e = std::move(c);
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
        e = std::move(f);
      } else if (accept_name("is")) {
        auto t = make(Expr::Kind::Test);
        t->negated = accept_name("not");
        t->name = name("a test name");
        t->args.push_back(std::move(e));
        if (peek_op("(")) {
          call_args(*t);
        } else if (test_arg_follows()) {  // x is divisibleby 3, x is sameas none
          t->args.push_back(postfix(primary()));
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }
  bool test_arg_follows() const {
    const Token& k = peek();
    if (k.kind == Token::String || k.kind == Token::Int || k.kind == Token::Float) return true;
    if (k.kind == Token::Op) return k.text == "[" || k.text == "{";
    if (k.kind != Token::Name) return false;
    for (const char* w : {"else", "or", "and", "if", "is", "in", "not"})
      if (k.text == w) return false;
    return true;
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
  ExprPtr tuple_expr() {
    auto e = make(Expr::Kind::List);
    e->name = "tuple";
    return e;
  }
  // Deeply nested expressions or blocks would overflow the stack: refuse them.
  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p_(p) {
      if (++p_->depth_ > kMaxDepth) syntax_error(p_->line_, "template nested too deeply");
    }
    ~DepthGuard() { --p_->depth_; }
    Parser* p_;
  };
  static constexpr int kMaxDepth = 200;
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
    return e;
  }
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
};

}  // namespace

Body parse_template(const std::string& source) { return Parser(split_source(source)).parse_all(); }

}  // namespace camelid::jinja
