// Template rendering: statements write to the output, expressions evaluate to Values. Every
// statement, expression and loop iteration is a step of the render's budget and one level of
// its depth limit (jinja_sandbox.h), so no template renders forever or overflows the stack.
#include <algorithm>
#include <unordered_map>

#include "chat/jinja.h"

namespace camelid::jinja {
namespace {

// What a statement asks of the loop around it. Plain return values rather than exceptions: a
// `continue` in every iteration (under 190 nested blocks) would otherwise unwind the stack each time.
enum class Flow { Normal, Break, Continue };

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
    budget_.tick(1 + int64_t(s.size() >> 5));
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

  Flow exec(const Body& body, Output& out) {
    for (const StmtPtr& s : body)
      if (Flow f = exec(*s, out); f != Flow::Normal) return f;
    return Flow::Normal;
  }

  int line = 0;

 private:
  using Scope = std::unordered_map<std::string, Value>;

  // Names come from the template's source: hashing a long one, in each of many nested scopes,
  // is work the budget counts.
  Value lookup(const std::string& name) {
    budget_.tick(1 + int64_t(scopes_.size() >> 3) + int64_t((scopes_.size() * name.size()) >> 5));
    for (size_t i = scopes_.size(); i-- > 0;) {
      auto it = scopes_[i].find(name);
      if (it != scopes_[i].end()) return it->second;
    }
    return builtin_global(name);
  }
  void assign(const std::string& name, Value v) {
    budget_.tick(1 + int64_t(name.size() >> 5));
    scopes_.back()[name] = std::move(v);
  }

  Flow exec(const Stmt& s, Output& out) {
    DepthGuard guard;
    budget_.tick(1);
    line = s.line;
    switch (s.kind) {
      case Stmt::Kind::Text: out.append(s.text); return Flow::Normal;
      case Stmt::Kind::Output: out.append(eval(*s.expr).to_str()); return Flow::Normal;
      case Stmt::Kind::If:
        for (auto& [cond, body] : s.branches)
          if (!cond || eval(*cond).truthy()) return exec(body, out);
        return Flow::Normal;
      case Stmt::Kind::For: return exec_for(s, out);
      case Stmt::Kind::Set: exec_set(s); return Flow::Normal;
      case Stmt::Kind::SetBlock: return exec_set_block(s);
      case Stmt::Kind::Macro: define_macro(s); return Flow::Normal;
      case Stmt::Kind::Break: return Flow::Break;
      case Stmt::Kind::Continue: return Flow::Continue;
      case Stmt::Kind::Scope: return exec(s.body, out);
      case Stmt::Kind::FilterBlock: return exec_filter_block(s, out);
      case Stmt::Kind::CallBlock: exec_call_block(s, out); return Flow::Normal;
    }
    return Flow::Normal;
  }

  // exec() and eval() recurse as deep as max_depth allows, so they keep small frames: the work
  // of each kind of node, with its locals, is in a function of its own, never inlined.
  [[gnu::noinline]] void exec_set(const Stmt& s) {
    Value v = eval(*s.expr);
    if (s.set_attr) {
      Value obj = lookup(s.targets[0]);
      if (!obj.is_namespace()) throw TemplateError("cannot assign attribute on non-namespace object '" + s.targets[0] + "'");
      obj.set(s.targets[1], std::move(v));
    } else {
      unpack(s.targets, std::move(v));
    }
  }

  [[gnu::noinline]] Flow exec_set_block(const Stmt& s) {
    Output captured(budget_);
    const Flow f = exec(s.body, captured);
    assign(s.targets[0], Value(captured.take()));
    return f;
  }

  [[gnu::noinline]] static Value loop_info(const List& l, int64_t i) {
    const int64_t n = int64_t(l.size());
    Dict d;
    d.reserve(10);
    d.emplace_back("index", Value(i + 1));
    d.emplace_back("index0", Value(i));
    d.emplace_back("revindex", Value(n - i));
    d.emplace_back("revindex0", Value(n - i - 1));
    d.emplace_back("first", Value(i == 0));
    d.emplace_back("last", Value(i == n - 1));
    d.emplace_back("length", Value(n));
    d.emplace_back("previtem", i > 0 ? l[size_t(i - 1)] : Value());
    d.emplace_back("nextitem", i + 1 < n ? l[size_t(i + 1)] : Value());
    d.emplace_back("cycle", Value(Function([i](Args& a) { return a.pos.empty() ? Value() : a.pos[size_t(i) % a.pos.size()]; })));
    return Value(std::move(d));
  }

  void unpack(const std::vector<std::string>& names, Value v) {
    if (names.size() == 1) return assign(names[0], std::move(v));
    if (!v.is_list() || v.list().size() != names.size())
      throw TemplateError("cannot unpack " + std::string(v.type_name()) + " into " + std::to_string(names.size()) + " names");
    for (size_t i = 0; i < names.size(); ++i) assign(names[i], v.list()[i]);
  }

  [[gnu::noinline]] Flow exec_for(const Stmt& s, Output& out) {
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
    for (int64_t i = 0; i < n; ++i) {
      budget_.tick(1);
      unpack(s.targets, l[size_t(i)]);
      assign("loop", loop_info(l, i));
      if (exec(s.body, out) == Flow::Break) break;
    }
    scopes_.pop_back();
    return n == 0 ? exec(s.else_body, out) : Flow::Normal;  // a break in the else block is the outer loop's
  }

  [[gnu::noinline]] Flow exec_filter_block(const Stmt& s, Output& out) {
    Output captured(budget_);
    const Flow f = exec(s.body, captured);
    Value v(captured.take());
    for (const ExprPtr& filter : s.filters) {
      Args a = eval_args(*filter, 1);
      v = apply_filter(filter->name, v, a);
    }
    out.append(v.to_str());
    return f;
  }

  void define_macro(const Stmt& s) { assign(s.text, make_macro(s, s.text, nullptr)); }

  // A macro (or a call block's caller): binds its arguments as jinja2 does (positional, then by
  // name, then defaults evaluated in the macro's frame; extra ones go to varargs/kwargs if the body
  // reads them, else they are an error), renders its body, returns the text. `closure`: the
  // scopes the body sees (a caller sees the call site's); null: the template's top level.
  Value make_macro(const Stmt& m, const std::string& name, std::shared_ptr<std::vector<Scope>> closure) {
    const Stmt* mp = &m;
    return Value(Function([this, mp, name, closure](Args& a) {
      const Stmt& m = *mp;
      DepthGuard guard;  // a macro calling itself ends at the depth limit
      budget_.tick(1 + int64_t((a.pos.size() + a.kw.size()) >> 3));
      if (a.pos.size() > m.params.size() && !m.uses_varargs)
        throw TemplateError("macro '" + name + "' takes not more than " + std::to_string(m.params.size()) + " argument(s)");
      Scope frame;
      List varargs;
      for (size_t i = m.params.size(); i < a.pos.size(); ++i) varargs.push_back(a.pos[i]);
      Dict kwargs;
      Value caller;
      for (auto& kv : a.kw) {
        const std::string& k = kv.first;
        const Value& v = kv.second;
        const bool is_param = std::any_of(m.params.begin(), m.params.end(), [&](auto& p) { return p.first == k; });
        if (is_param) continue;
        if (k == "caller" && m.uses_caller) caller = v;
        else if (m.uses_kwargs) kwargs.emplace_back(k, v);
        else throw TemplateError("macro '" + name + "' takes no keyword argument '" + k + "'");
      }
      // A macro sees the template's globals (or its closure) and its own arguments.
      std::vector<Scope> saved;
      saved.swap(scopes_);
      Output out(budget_);
      try {
        if (closure) {
          budget_.tick(1 + int64_t(entries(*closure) >> 3));
          scopes_ = *closure;
        } else {
          budget_.tick(1 + int64_t(saved.front().size() >> 3));
          scopes_.push_back(saved.front());
        }
        scopes_.emplace_back();
        // Defaults may read the parameters before them, as in jinja2.
        for (size_t i = 0; i < m.params.size(); ++i) {
          const Value* v = a.get(i, m.params[i].first.c_str());
          scopes_.back()[m.params[i].first] = v ? *v : m.params[i].second ? eval(*m.params[i].second) : Value();
        }
        if (m.uses_varargs) scopes_.back()["varargs"] = Value::tuple(std::move(varargs));
        if (m.uses_kwargs) scopes_.back()["kwargs"] = Value(std::move(kwargs));
        if (m.uses_caller) scopes_.back()["caller"] = caller.is_undefined() ? no_caller() : caller;
        if (exec(m.body, out) != Flow::Normal) throw TemplateError("'break' or 'continue' outside a loop");
      } catch (...) {
        scopes_.swap(saved);
        throw;
      }
      scopes_.swap(saved);
      return Value(out.take());
    }));
  }
  static size_t entries(const std::vector<Scope>& scopes) {
    size_t n = scopes.size();
    for (const Scope& sc : scopes) n += sc.size();
    return n;
  }
  static Value no_caller() {
    return Value(Function([](Args&) -> Value { throw TemplateError("No caller defined"); }));
  }

  [[gnu::noinline]] void exec_call_block(const Stmt& s, Output& out) {
    const Expr& call = *s.expr;
    Value f = eval(*call.args[0]);
    Args a = eval_args(call, 1);
    if (!f.is_callable()) not_callable(*call.args[0], f);
    budget_.tick(1 + int64_t(entries(scopes_) >> 3));
    a.kw.emplace_back("caller", make_macro(s, "caller", std::make_shared<std::vector<Scope>>(scopes_)));
    out.append(f.function()(a).to_str());
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
      case Expr::Kind::Attr: return eval_attr(e);
      case Expr::Kind::Item: return eval_item(e);
      case Expr::Kind::Slice: return eval_slice(e);
      case Expr::Kind::Call: return call(e);
      case Expr::Kind::Filter:
      case Expr::Kind::Test: return eval_filter_or_test(e);
      case Expr::Kind::Unary: return eval_unary(e);
      case Expr::Kind::Binary: return eval_binary(e);
      case Expr::Kind::Cond:
        if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : Value();
      case Expr::Kind::List: return eval_list(e);
      case Expr::Kind::Dict: return eval_dict(e);
    }
    return Value();
  }

  [[gnu::noinline]] Value eval_attr(const Expr& e) {
    Value obj = eval(*e.args[0]);
    if (obj.is_dict()) return obj.get(e.name);
    return subscript(obj, Value(e.name));
  }
  [[gnu::noinline]] Value eval_item(const Expr& e) {
    const Value obj = eval(*e.args[0]), key = eval(*e.args[1]);
    return subscript(obj, key);
  }
  [[gnu::noinline]] Value eval_slice(const Expr& e) {
    auto opt = [&](size_t i) { return e.args[i] ? eval(*e.args[i]) : Value::none(); };
    const Value obj = eval(*e.args[0]), a = opt(1), b = opt(2), c = opt(3);
    return slice(obj, a, b, c);
  }
  [[gnu::noinline]] Value eval_filter_or_test(const Expr& e) {
    Value v = eval(*e.args[0]);
    Args a = eval_args(e, 1);
    if (e.kind == Expr::Kind::Filter) return apply_filter(e.name, v, a);
    return Value(apply_test(e.name, v, a) != e.negated);
  }
  [[gnu::noinline]] Value eval_unary(const Expr& e) {
    Value v = eval(*e.args[0]);
    if (e.name == "not") return Value(!v.truthy());
    if (e.name == "-") return negate(v);
    if (!v.is_number() && v.kind() != Value::Kind::Bool) throw TemplateError(std::string("bad operand type for unary ") + e.name + ": '" + v.type_name() + "'");
    return v;
  }
  [[gnu::noinline]] Value eval_binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and" || op == "or") {
      Value a = eval(*e.args[0]);
      return a.truthy() == (op == "and") ? eval(*e.args[1]) : a;
    }
    const Value a = eval(*e.args[0]), b = eval(*e.args[1]);
    return binary_op(op, a, b);
  }
  [[gnu::noinline]] Value eval_list(const Expr& e) {
    List l;
    l.reserve(e.args.size());
    for (auto& x : e.args) l.push_back(eval(*x));
    return e.tuple ? Value::tuple(std::move(l)) : Value(std::move(l));
  }
  [[gnu::noinline]] Value eval_dict(const Expr& e) {
    Dict d;  // a key given twice keeps its first place and its last value, as in Python
    for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
      std::string k = eval(*e.args[i]).to_str();
      Value v = eval(*e.args[i + 1]);
      tick_items(d.size());
      auto it = std::find_if(d.begin(), d.end(), [&](auto& kv) { return kv.first == k; });
      if (it != d.end()) it->second = std::move(v);
      else d.emplace_back(std::move(k), std::move(v));
    }
    return Value(std::move(d));
  }

  [[gnu::noinline]] Value call(const Expr& e) {
    const Expr& callee = *e.args[0];
    if (callee.kind == Expr::Kind::Attr) return call_attr(e);
    Value f = eval(callee);
    Args a = eval_args(e, 1);
    if (!f.is_callable()) not_callable(callee, f);
    return f.function()(a);
  }
  [[gnu::noinline]] Value call_attr(const Expr& e) {  // obj.method(...)
    const Expr& callee = *e.args[0];
    Value obj = eval(*callee.args[0]);
    Args a = eval_args(e, 1);
    Value r;
    if (call_method(obj, callee.name, a, &r)) return r;
    Value f = obj.is_dict() ? obj.get(callee.name) : Value();
    if (!f.is_callable()) throw TemplateError(std::string("'") + obj.type_name() + "' object has no attribute '" + callee.name + "'");
    return f.function()(a);
  }
  [[noreturn, gnu::noinline]] static void not_callable(const Expr& callee, const Value& f) {
    throw TemplateError((callee.kind == Expr::Kind::Name ? "'" + callee.name + "'" : std::string("value")) +
                        (f.is_undefined() ? " is undefined" : " is not callable"));
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
      if (in.exec(*body_, out) != Flow::Normal) throw TemplateError("'break' or 'continue' outside a loop");
      text = out.take();
    } catch (...) {
      line = in.line;
      throw;
    }
  } catch (const RaisedError&) {
    throw;
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
