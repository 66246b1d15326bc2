// Template rendering: statements write to the output, expressions evaluate to Values.
#include <cmath>
#include <unordered_map>

#include "chat/jinja.h"

namespace camelid::jinja {
namespace {

struct BreakLoop {};
struct ContinueLoop {};

class Interp {
 public:
  explicit Interp(const Dict& vars) {
    scopes_.emplace_back();
    for (auto& [k, v] : vars) scopes_[0][k] = v;
  }

  void exec(const Body& body, std::string& out) {
    for (const StmtPtr& s : body) exec(*s, out);
  }

  int line = 0;

 private:
  using Scope = std::unordered_map<std::string, Value>;

  Value lookup(const std::string& name) {
    for (size_t i = scopes_.size(); i-- > 0;) {
      auto it = scopes_[i].find(name);
      if (it != scopes_[i].end()) return it->second;
    }
    return builtin_global(name);
  }
  void assign(const std::string& name, Value v) { scopes_.back()[name] = std::move(v); }

  void exec(const Stmt& s, std::string& out) {
    line = s.line;
    switch (s.kind) {
      case Stmt::Kind::Text: out += s.text; return;
      case Stmt::Kind::Output: out += eval(*s.expr).to_str(); return;
      case Stmt::Kind::If:
        for (auto& [cond, body] : s.branches)
          if (!cond || eval(*cond).truthy()) { exec(body, out); return; }
        return;
      case Stmt::Kind::For: exec_for(s, out); return;
      case Stmt::Kind::Set: {
        Value v = eval(*s.expr);
        if (s.set_attr) {
          Value obj = lookup(s.targets[0]);
          if (!obj.is_namespace()) throw TemplateError("cannot assign attribute on non-namespace object '" + s.targets[0] + "'");
          obj.set(s.targets[1], std::move(v));
        } else {
          unpack(s.targets, std::move(v));
        }
        return;
      }
      case Stmt::Kind::SetBlock: {
        std::string captured;
        exec(s.body, captured);
        assign(s.targets[0], Value(captured));
        return;
      }
      case Stmt::Kind::Macro: define_macro(s); return;
      case Stmt::Kind::Break: throw BreakLoop{};
      case Stmt::Kind::Continue: throw ContinueLoop{};
      case Stmt::Kind::Scope: exec(s.body, out); return;
    }
  }

  void unpack(const std::vector<std::string>& names, Value v) {
    if (names.size() == 1) return assign(names[0], std::move(v));
    if (!v.is_list() || v.list().size() != names.size())
      throw TemplateError("cannot unpack " + std::string(v.type_name()) + " into " + std::to_string(names.size()) + " names");
    for (size_t i = 0; i < names.size(); ++i) assign(names[i], v.list()[i]);
  }

  void exec_for(const Stmt& s, std::string& out) {
    List items = iterate(eval(*s.expr));
    scopes_.emplace_back();
    if (s.filter) {  // {% for x in xs if cond %}: loop.* counts only the kept items
      List kept;
      for (Value& v : items) {
        unpack(s.targets, v);
        if (eval(*s.filter).truthy()) kept.push_back(v);
      }
      items.swap(kept);
    }
    const int64_t n = int64_t(items.size());
    try {
      for (int64_t i = 0; i < n; ++i) {
        unpack(s.targets, items[size_t(i)]);
        Value loop(Dict{{"index", Value(i + 1)}, {"index0", Value(i)}, {"revindex", Value(n - i)},
                        {"revindex0", Value(n - i - 1)}, {"first", Value(i == 0)}, {"last", Value(i == n - 1)},
                        {"length", Value(n)}, {"previtem", i > 0 ? items[size_t(i - 1)] : Value()},
                        {"nextitem", i + 1 < n ? items[size_t(i + 1)] : Value()}});
        loop.set("cycle", Value(Function([i](Args& a) { return a.pos.empty() ? Value() : a.pos[size_t(i) % a.pos.size()]; })));
        assign("loop", loop);
        try {
          exec(s.body, out);
        } catch (const ContinueLoop&) {
        }
      }
    } catch (const BreakLoop&) {
    }
    scopes_.pop_back();
    if (n == 0) exec(s.else_body, out);
  }

  void define_macro(const Stmt& s) {
    const Stmt* m = &s;
    assign(s.text, Value(Function([this, m](Args& a) {
      Scope frame;
      for (size_t i = 0; i < m->params.size(); ++i) {
        const Value* v = a.get(i, m->params[i].first.c_str());
        frame[m->params[i].first] = v ? *v : m->params[i].second ? eval(*m->params[i].second) : Value();
      }
      // A macro sees the template's globals and its own arguments, not the caller's locals.
      std::vector<Scope> saved;
      saved.swap(scopes_);
      scopes_.push_back(saved.front());
      scopes_.push_back(std::move(frame));
      std::string out;
      try {
        exec(m->body, out);
      } catch (...) {
        scopes_.swap(saved);
        throw;
      }
      scopes_.swap(saved);
      return Value(out);
    })));
  }

  Args eval_args(const Expr& e, size_t first) {
    Args a;
    for (size_t i = first; i < e.args.size(); ++i) a.pos.push_back(eval(*e.args[i]));
    for (auto& [k, v] : e.kwargs) a.kw.emplace_back(k, eval(*v));
    return a;
  }

  Value eval(const Expr& e) {
    line = e.line;
    switch (e.kind) {
      case Expr::Kind::Literal: return e.value;
      case Expr::Kind::Name: return lookup(e.name);
      case Expr::Kind::Attr: {
        Value obj = eval(*e.args[0]);
        if (obj.is_dict()) return obj.get(e.name);
        return subscript(obj, Value(e.name));
      }
      case Expr::Kind::Item: return subscript(eval(*e.args[0]), eval(*e.args[1]));
      case Expr::Kind::Slice: {
        auto opt = [&](size_t i) { return e.args[i] ? eval(*e.args[i]) : Value::none(); };
        return slice(eval(*e.args[0]), opt(1), opt(2), opt(3));
      }
      case Expr::Kind::Call: return call(e);
      case Expr::Kind::Filter: {
        Value v = eval(*e.args[0]);
        Args a = eval_args(e, 1);
        return apply_filter(e.name, v, a);
      }
      case Expr::Kind::Test: {
        Value v = e.name == "defined" || e.name == "undefined" ? eval_maybe_undefined(*e.args[0]) : eval(*e.args[0]);
        Args a = eval_args(e, 1);
        return Value(apply_test(e.name, v, a) != e.negated);
      }
      case Expr::Kind::Unary: {
        Value v = eval(*e.args[0]);
        if (e.name == "not") return Value(!v.truthy());
        if (!v.is_number() && v.kind() != Value::Kind::Bool) throw TemplateError(std::string("bad operand type for unary ") + e.name + ": '" + v.type_name() + "'");
        if (e.name == "+") return v;
        return v.kind() == Value::Kind::Float ? Value(-v.as_double()) : Value(-v.as_int());
      }
      case Expr::Kind::Binary: return binary(e);
      case Expr::Kind::Cond:
        if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : Value();
      case Expr::Kind::List: {
        List l;
        for (auto& x : e.args) l.push_back(eval(*x));
        return Value(std::move(l));
      }
      case Expr::Kind::Dict: {
        Value d(Dict{});
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          Value k = eval(*e.args[i]);
          d.set(k.to_str(), eval(*e.args[i + 1]));
        }
        return d;
      }
    }
    return Value();
  }

  // `x is defined` must not fail on x.y.z chains; everything else is evaluated normally.
  Value eval_maybe_undefined(const Expr& e) { return eval(e); }

  Value call(const Expr& e) {
    const Expr& callee = *e.args[0];
    if (callee.kind == Expr::Kind::Attr) {
      Value obj = eval(*callee.args[0]);
      Args a = eval_args(e, 1);
      Value r;
      if (call_method(obj, callee.name, a, &r)) return r;
      Value f = obj.is_dict() ? obj.get(callee.name) : Value();
      if (f.is_callable()) return f.function()(a);
      throw TemplateError(std::string("'") + obj.type_name() + "' object has no attribute '" + callee.name + "'");
    }
    Value f = eval(callee);
    Args a = eval_args(e, 1);
    if (!f.is_callable())
      throw TemplateError((callee.kind == Expr::Kind::Name ? "'" + callee.name + "'" : std::string("value")) +
                          (f.is_undefined() ? " is undefined" : " is not callable"));
    return f.function()(a);
  }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and") {
      Value a = eval(*e.args[0]);
      return a.truthy() ? eval(*e.args[1]) : a;
    }
    if (op == "or") {
      Value a = eval(*e.args[0]);
      return a.truthy() ? a : eval(*e.args[1]);
    }
    const Value a = eval(*e.args[0]), b = eval(*e.args[1]);
    if (op == "==") return Value(equal(a, b));
    if (op == "!=") return Value(!equal(a, b));
    if (op == "<") return Value(compare(a, b) < 0);
    if (op == ">") return Value(compare(a, b) > 0);
    if (op == "<=") return Value(compare(a, b) <= 0);
    if (op == ">=") return Value(compare(a, b) >= 0);
    if (op == "in") return Value(contains(b, a));
    if (op == "not in") return Value(!contains(b, a));
    if (op == "~") return Value(a.to_str() + b.to_str());
    if (op == "+") {
      if (a.is_string() && b.is_string()) return Value(a.str() + b.str());
      if (a.is_list() && b.is_list()) {
        List l = a.list();
        l.insert(l.end(), b.list().begin(), b.list().end());
        return Value(std::move(l));
      }
    }
    if (op == "*" && a.is_string() && b.kind() == Value::Kind::Int) {
      std::string s;
      for (int64_t i = 0; i < b.as_int(); ++i) s += a.str();
      return Value(s);
    }
    const bool numeric = (a.is_number() || a.kind() == Value::Kind::Bool) && (b.is_number() || b.kind() == Value::Kind::Bool);
    if (!numeric)
      throw TemplateError("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
    const bool ints = a.kind() != Value::Kind::Float && b.kind() != Value::Kind::Float;
    const double x = a.as_double(), y = b.as_double();
    if ((op == "/" || op == "//" || op == "%") && y == 0) throw TemplateError("division by zero");
    if (op == "+") return ints ? Value(a.as_int() + b.as_int()) : Value(x + y);
    if (op == "-") return ints ? Value(a.as_int() - b.as_int()) : Value(x - y);
    if (op == "*") return ints ? Value(a.as_int() * b.as_int()) : Value(x * y);
    if (op == "/") return Value(x / y);
    if (op == "//") return ints ? Value(int64_t(std::floor(x / y))) : Value(std::floor(x / y));
    if (op == "%") {
      if (ints) {
        int64_t r = a.as_int() % b.as_int();
        if (r != 0 && ((r < 0) != (b.as_int() < 0))) r += b.as_int();  // Python's sign rule
        return Value(r);
      }
      double r = std::fmod(x, y);
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      return Value(r);
    }
    if (op == "**") return ints && b.as_int() >= 0 ? Value(int64_t(std::llround(std::pow(x, y)))) : Value(std::pow(x, y));
    throw TemplateError("unknown operator " + op);
  }

  std::vector<Scope> scopes_;
};

}  // namespace

Template::Template(const std::string& source) : body_(std::make_shared<Body>(parse_template(source))) {}

std::string Template::render(const Dict& vars) const {
  Interp in(vars);
  std::string out;
  try {
    in.exec(*body_, out);
  } catch (const RaisedError&) {
    throw;
  } catch (const BreakLoop&) {
    throw TemplateError("'break' outside a loop");
  } catch (const ContinueLoop&) {
    throw TemplateError("'continue' outside a loop");
  } catch (const TemplateError& e) {
    throw TemplateError("template error (line " + std::to_string(in.line) + "): " + e.what());
  }
  return out;
}

}  // namespace camelid::jinja
