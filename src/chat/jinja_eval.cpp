// Template rendering: statements write to the output, expressions evaluate to Values. Every
// statement, expression and loop iteration is a step of the render's budget and one level of
// its depth limit (jinja_sandbox.h), so no template renders forever or overflows the stack.
#include <algorithm>
#include <unordered_map>

#include "chat/jinja.h"

namespace camelid::jinja {
namespace {

struct BreakLoop {};
struct ContinueLoop {};

// Rendered text (the template's output, or what a macro or {% set %} block captures): counted
// against the render's memory and max_string as it grows.
class Output {
 public:
  explicit Output(Budget& b) : budget_(b) {}
  ~Output() { budget_.release(charged_); }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  void append(const std::string& s) {
    const size_t max = budget_.limits().max_string;
    if (s.size() > max - text_.size()) throw LimitError("output longer than " + mib(max));
    budget_.tick(1 + int64_t(s.size() >> 8));
    budget_.charge(s.size());
    charged_ += s.size();
    text_ += s;
  }
  std::string take() { return std::move(text_); }

 private:
  Budget& budget_;
  std::string text_;
  size_t charged_ = 0;
};

class Interp {
 public:
  Interp(const Dict& vars, Budget& budget) : budget_(budget) {
    scopes_.emplace_back();
    for (auto& [k, v] : vars) scopes_[0][k] = v;
  }

  void exec(const Body& body, Output& out) {
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

  void exec(const Stmt& s, Output& out) {
    DepthGuard guard;
    budget_.tick(1);
    line = s.line;
    switch (s.kind) {
      case Stmt::Kind::Text: out.append(s.text); return;
      case Stmt::Kind::Output: out.append(eval(*s.expr).to_str()); return;
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
        Output captured(budget_);
        exec(s.body, captured);
        assign(s.targets[0], Value(captured.take()));
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

  void exec_for(const Stmt& s, Output& out) {
    // The items live in a Value so that the render's memory counts them for the whole loop.
    Value items(iterate(eval(*s.expr)));
    scopes_.emplace_back();
    if (s.filter) {  // {% for x in xs if cond %}: loop.* counts only the kept items
      List kept;
      for (const Value& v : items.list()) {
        budget_.tick(1);
        unpack(s.targets, v);
        if (eval(*s.filter).truthy()) kept.push_back(v);
      }
      items = Value(std::move(kept));
    }
    const List& l = items.list();
    const int64_t n = int64_t(l.size());
    try {
      for (int64_t i = 0; i < n; ++i) {
        budget_.tick(1);
        unpack(s.targets, l[size_t(i)]);
        Value loop(Dict{{"index", Value(i + 1)}, {"index0", Value(i)}, {"revindex", Value(n - i)},
                        {"revindex0", Value(n - i - 1)}, {"first", Value(i == 0)}, {"last", Value(i == n - 1)},
                        {"length", Value(n)}, {"previtem", i > 0 ? l[size_t(i - 1)] : Value()},
                        {"nextitem", i + 1 < n ? l[size_t(i + 1)] : Value()},
                        {"cycle", Value(Function([i](Args& a) { return a.pos.empty() ? Value() : a.pos[size_t(i) % a.pos.size()]; }))}});
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
      DepthGuard guard;  // a macro calling itself ends at the depth limit
      Scope frame;
      for (size_t i = 0; i < m->params.size(); ++i) {
        const Value* v = a.get(i, m->params[i].first.c_str());
        frame[m->params[i].first] = v ? *v : m->params[i].second ? eval(*m->params[i].second) : Value();
      }
      // A macro sees the template's globals and its own arguments, not the caller's locals.
      std::vector<Scope> saved;
      saved.swap(scopes_);
      budget_.tick(1 + int64_t(saved.front().size() >> 3));
      Output out(budget_);
      try {
        scopes_.push_back(saved.front());
        scopes_.push_back(std::move(frame));
        exec(m->body, out);
      } catch (...) {
        scopes_.swap(saved);
        throw;
      }
      scopes_.swap(saved);
      return Value(out.take());
    })));
  }

  Args eval_args(const Expr& e, size_t first) {
    Args a;
    for (size_t i = first; i < e.args.size(); ++i) a.pos.push_back(eval(*e.args[i]));
    for (auto& [k, v] : e.kwargs) a.kw.emplace_back(k, eval(*v));
    return a;
  }

  Value eval(const Expr& e) {
    DepthGuard guard;
    budget_.tick(1);
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
        Value v = eval(*e.args[0]);
        Args a = eval_args(e, 1);
        return Value(apply_test(e.name, v, a) != e.negated);
      }
      case Expr::Kind::Unary: {
        Value v = eval(*e.args[0]);
        if (e.name == "not") return Value(!v.truthy());
        if (e.name == "-") return negate(v);
        if (!v.is_number() && v.kind() != Value::Kind::Bool) throw TemplateError(std::string("bad operand type for unary ") + e.name + ": '" + v.type_name() + "'");
        return v;
      }
      case Expr::Kind::Binary: {
        const std::string& op = e.name;
        if (op == "and" || op == "or") {
          Value a = eval(*e.args[0]);
          return a.truthy() == (op == "and") ? eval(*e.args[1]) : a;
        }
        const Value a = eval(*e.args[0]), b = eval(*e.args[1]);
        return binary_op(op, a, b);
      }
      case Expr::Kind::Cond:
        if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : Value();
      case Expr::Kind::List: {
        List l;
        for (auto& x : e.args) l.push_back(eval(*x));
        return Value(std::move(l));
      }
      case Expr::Kind::Dict: {
        Dict d;  // a key given twice keeps its first place and its last value, as in Python
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          std::string k = eval(*e.args[i]).to_str();
          Value v = eval(*e.args[i + 1]);
          auto it = std::find_if(d.begin(), d.end(), [&](auto& kv) { return kv.first == k; });
          if (it != d.end()) it->second = std::move(v);
          else d.emplace_back(std::move(k), std::move(v));
        }
        return Value(std::move(d));
      }
    }
    return Value();
  }

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

  Budget& budget_;
  std::vector<Scope> scopes_;
};

}  // namespace

Template::Template(const std::string& source) {
  try {
    body_ = std::make_shared<Body>(parse_template(source));
  } catch (const TemplateError&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw LimitError("template syntax error: out of memory while parsing");
  } catch (const std::exception& e) {
    throw TemplateError(std::string("template syntax error: ") + e.what());
  }
}

std::string Template::render(const Dict& vars, const Limits& limits, RenderStats* stats) const {
  Budget budget(limits);
  std::string text;
  int line = 0;
  try {
    Interp in(vars, budget);
    try {
      Output out(budget);
      in.exec(*body_, out);
      text = out.take();
    } catch (...) {
      line = in.line;
      throw;
    }
  } catch (const RaisedError&) {
    throw;
  } catch (const BreakLoop&) {
    throw TemplateError("'break' outside a loop");
  } catch (const ContinueLoop&) {
    throw TemplateError("'continue' outside a loop");
  } catch (const LimitError& e) {
    throw LimitError("template error (line " + std::to_string(line) + "): " + e.what());
  } catch (const TemplateError& e) {
    throw TemplateError("template error (line " + std::to_string(line) + "): " + e.what());
  } catch (const std::bad_alloc&) {
    throw LimitError("template error (line " + std::to_string(line) + "): out of memory");
  } catch (const std::exception& e) {
    throw TemplateError("template error (line " + std::to_string(line) + "): " + e.what());
  }
  if (stats) stats->steps = budget.steps(), stats->peak_bytes = budget.peak_bytes();
  return text;
}

}  // namespace camelid::jinja
