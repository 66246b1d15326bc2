// Filters and tests, with Jinja2/Python behaviour. Text work is in jinja_text.cpp, methods and
// container primitives in jinja_methods.cpp; all of it charges the render's budget.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "chat/jinja.h"
#include "chat/jinja_text.h"

namespace camelid::jinja {
namespace {

[[noreturn]] void bad(const std::string& msg) { throw TemplateError(msg); }


// Attribute of each item, dotted paths allowed ("function.name").
Value attribute(const Value& item, const std::string& path) {
  Value v = item;
  size_t b = 0;
  while (b <= path.size()) {
    tick(1);
    const size_t e = path.find('.', b);
    v = subscript(v, Value(path.substr(b, e == std::string::npos ? std::string::npos : e - b)));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return v;
}

List select(const Value& v, Args& a, bool by_attr, bool keep) {
  List out;
  const size_t first = by_attr ? 1 : 0;
  const std::string attr = by_attr ? str_arg(a, 0, "attribute") : "";
  const Value* test = a.pos.size() > first ? &a.pos[first] : nullptr;
  for (const Value& item : iterate(v)) {
    tick(1);
    const Value x = by_attr ? attribute(item, attr) : item;
    bool ok;
    if (!test) {
      ok = x.truthy();
    } else {
      Args targs;
      targs.pos.assign(a.pos.begin() + long(first) + 1, a.pos.end());
      ok = apply_test(test->to_str(), x, targs);
    }
    if (ok == keep) out.push_back(item);
  }
  return out;
}

// jinja2's int filter: int(x), else int(float(x)), else the default. Past int64 is an error
// (Python would give a big int).
Value to_int(const Value& v, const Args& a) {
  if (v.is_number() || v.kind() == Value::Kind::Bool) return Value(v.as_int());
  if (v.is_string()) {
    std::string s = strip(v.str(), kWs, true, true);
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    if (!s.empty() && s.find_first_not_of("+-0123456789") == std::string::npos) {
      errno = 0;
      char* end = nullptr;
      const long long i = std::strtoll(s.c_str(), &end, 10);
      if (end && *end == 0) {
        if (errno == ERANGE) throw LimitError("integer overflow: " + s.substr(0, 40) + " does not fit in 64 bits");
        return Value(int64_t(i));
      }
    }
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == 0 && !std::isnan(d)) return Value(Value(d).as_int());
  }
  return Value(int_arg(a, 0, "default", 0));
}

Value sum(const List& l) {
  Value acc(int64_t(0));
  for (const Value& x : l) {
    tick(1);
    acc = binary_op("+", acc, x);
  }
  return acc;
}

// Each filter is a function of its own: map(filter) applies filters by name, so a chain of them
// is a recursion, and its frames stay small (one filter's locals, not all of them).
using Filter = Value (*)(const std::string& f, const Value& v, Args& a);

Value f_trim(const std::string& f, const Value& v, Args& a) {
  return Value(strip(v.to_str(), a.get(0, "chars") ? a.get(0, "chars")->to_str() : kWs, true, true));
}
Value f_tojson(const std::string& f, const Value& v, Args& a) {
  const Value* ind = a.get(0, "indent");
  const Value* sk = a.get(Args::kKeywordOnly, "sort_keys");
  return Value(v.to_json(ind && ind->is_number() ? ind->as_int() : -1, sk && sk->truthy()));
}
Value f_length(const std::string& f, const Value& v, Args& a) {
  if (v.is_string()) return Value(int64_t(char_count(v.str())));
  if (v.is_list()) return Value(int64_t(v.list().size()));
  if (v.is_dict()) return Value(int64_t(v.dict().size()));
  if (v.is_undefined()) return Value(int64_t(0));
  bad(std::string("object of type '") + v.type_name() + "' has no len()");
}
Value f_string(const std::string& f, const Value& v, Args& a) {
  return Value(v.to_str());
}
Value f_int(const std::string& f, const Value& v, Args& a) {
  return to_int(v, a);
}
Value f_float(const std::string& f, const Value& v, Args& a) {
  if (v.is_number() || v.kind() == Value::Kind::Bool) return Value(v.as_double());
  if (v.is_string()) {
    char* end = nullptr;
    const double d = std::strtod(v.str().c_str(), &end);
    if (!v.str().empty() && end && *end == 0) return Value(d);
  }
  const Value* d = a.get(0, "default");
  return d ? Value(d->as_double()) : Value(0.0);
}
Value f_lower(const std::string& f, const Value& v, Args& a) {
  return Value(lower(v.to_str()));
}
Value f_upper(const std::string& f, const Value& v, Args& a) {
  return Value(upper(v.to_str()));
}
Value f_title(const std::string& f, const Value& v, Args& a) {
  return Value(title(v.to_str()));
}
Value f_capitalize(const std::string& f, const Value& v, Args& a) {
  return Value(capitalize(v.to_str()));
}
Value f_first(const std::string& f, const Value& v, Args& a) {
  if (v.is_list()) return v.list().empty() ? Value() : f == "first" ? v.list().front() : v.list().back();
  const List items = iterate(v);
  if (items.empty()) return Value();
  return f == "first" ? items.front() : items.back();
}
Value f_join(const std::string& f, const Value& v, Args& a) {
  const Value* attr = a.get(Args::kKeywordOnly, "attribute");
  const std::string sep = a.get(0, "d") ? a.get(0, "d")->to_str() : "";
  List items = iterate(v);
  if (attr)
    for (Value& x : items) x = attribute(x, attr->to_str());
  return Value(join(items, sep));
}
Value f_default(const std::string& f, const Value& v, Args& a) {
  const Value* b = a.get(1, "boolean");
  const bool use_default = v.is_undefined() || (b && b->truthy() && !v.truthy());
  if (!use_default) return v;
  const Value* d = a.get(0, "default_value");
  return d ? *d : Value("");
}
Value f_list(const std::string& f, const Value& v, Args& a) {
  return Value(iterate(v));
}
Value f_items(const std::string& f, const Value& v, Args& a) {
  if (!v.is_dict()) bad("items filter needs a mapping");
  List out;
  for (auto& [k, x] : v.dict()) out.push_back(Value(List{Value(k), x}));
  return Value(std::move(out));
}
Value f_replace(const std::string& f, const Value& v, Args& a) {
  return Value(replace(v.to_str(), str_arg(a, 0, "old"), str_arg(a, 1, "new"), int_arg(a, 2, "count", -1)));
}
Value f_selectattr(const std::string& f, const Value& v, Args& a) {
  return Value(select(v, a, true, true));
}
Value f_rejectattr(const std::string& f, const Value& v, Args& a) {
  return Value(select(v, a, true, false));
}
Value f_select(const std::string& f, const Value& v, Args& a) {
  return Value(select(v, a, false, true));
}
Value f_reject(const std::string& f, const Value& v, Args& a) {
  return Value(select(v, a, false, false));
}
Value f_map(const std::string& f, const Value& v, Args& a) {
  List out;
  const Value* attr = a.get(Args::kKeywordOnly, "attribute");
  if (!attr && a.pos.empty()) bad("map() needs a filter name or attribute=");
  const std::string filter = attr ? "" : str_arg(a, 0, "filter");
  for (const Value& x : iterate(v)) {
    tick(1);
    if (attr) {
      Value r = attribute(x, attr->to_str());
      const Value* def = a.get(Args::kKeywordOnly, "default");
      out.push_back(r.is_undefined() && def ? *def : r);
    } else {
      tick_items(a.pos.size());
      Args rest;
      rest.pos.assign(a.pos.begin() + 1, a.pos.end());
      out.push_back(apply_filter(filter, x, rest));
    }
  }
  return Value(std::move(out));
}
Value f_indent(const std::string& f, const Value& v, Args& a) {
  const Value* fl = a.get(1, "first");
  const Value* bl = a.get(2, "blank");
  return Value(indent(v.to_str(), int_arg(a, 0, "width", 4), fl && fl->truthy(), bl && bl->truthy()));
}
Value f_round(const std::string& f, const Value& v, Args& a) {
  const int64_t prec = std::clamp<int64_t>(int_arg(a, 0, "precision", 0), -400, 400);
  const Value* m = a.get(1, "method");
  const std::string method = m ? m->to_str() : "common";
  const double scale = std::pow(10.0, double(prec)), x = v.as_double() * scale;
  if (!std::isfinite(x) || !std::isfinite(scale) || scale == 0) return Value(v.as_double());
  const double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::round(x);
  return Value(r / scale);
}
Value f_abs(const std::string& f, const Value& v, Args& a) {
  return v.kind() == Value::Kind::Float ? Value(std::fabs(v.as_double())) : Value(checked_abs(v.as_int()));
}
Value f_unique(const std::string& f, const Value& v, Args& a) {
  List out;
  for (const Value& x : iterate(v))
    if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equal(x, y); })) out.push_back(x);
  return Value(std::move(out));
}
Value f_reverse(const std::string& f, const Value& v, Args& a) {
  if (v.is_string()) return slice(v, Value::none(), Value::none(), Value(int64_t(-1)));
  List l = iterate(v);
  std::reverse(l.begin(), l.end());
  return Value(std::move(l));
}
Value f_sort(const std::string& f, const Value& v, Args& a) {
  List l = iterate(v);
  const Value* rev = a.get(0, "reverse");
  const Value* attr = a.get(Args::kKeywordOnly, "attribute");
  // compare() is deterministic (NaN compares equal to everything), which is all stable_sort
  // needs to stay in bounds; it throws for unorderable items, which stable_sort passes on.
  std::stable_sort(l.begin(), l.end(), [&](const Value& x, const Value& y) {
    return attr ? compare(attribute(x, attr->to_str()), attribute(y, attr->to_str())) < 0 : compare(x, y) < 0;
  });
  if (rev && rev->truthy()) std::reverse(l.begin(), l.end());
  return Value(std::move(l));
}
Value f_dictsort(const std::string& f, const Value& v, Args& a) {
  if (!v.is_dict()) bad("dictsort filter needs a mapping");
  Dict d = v.dict();
  tick_items(d.size());
  std::stable_sort(d.begin(), d.end(), [](auto& x, auto& y) {
    tick_bytes(std::min(x.first.size(), y.first.size()));
    return x.first < y.first;
  });
  List out;
  for (auto& [k, x] : d) out.push_back(Value(List{Value(k), x}));
  return Value(std::move(out));
}
Value f_sum(const std::string& f, const Value& v, Args& a) {
  const List l = iterate(v);
  if (f == "sum") return sum(l);
  if (l.empty()) return Value();
  Value best = l[0];
  for (const Value& x : l)
    if (f == "min" ? compare(x, best) < 0 : compare(x, best) > 0) best = x;
  return best;
}
Value f_safe(const std::string& f, const Value& v, Args& a) {
  return v;
}
Value f_escape(const std::string& f, const Value& v, Args& a) {
  const std::string s = v.to_str();
  check_string_size(s.size());
  std::string out;
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
  return Value(std::move(out));
}

const std::pair<const char*, Filter> kFilters[] = {
    {"trim", f_trim},
    {"tojson", f_tojson},
    {"length", f_length}, {"count", f_length},
    {"string", f_string},
    {"int", f_int},
    {"float", f_float},
    {"lower", f_lower},
    {"upper", f_upper},
    {"title", f_title},
    {"capitalize", f_capitalize},
    {"first", f_first}, {"last", f_first},
    {"join", f_join},
    {"default", f_default}, {"d", f_default},
    {"list", f_list},
    {"items", f_items},
    {"replace", f_replace},
    {"selectattr", f_selectattr},
    {"rejectattr", f_rejectattr},
    {"select", f_select},
    {"reject", f_reject},
    {"map", f_map},
    {"indent", f_indent},
    {"round", f_round},
    {"abs", f_abs},
    {"unique", f_unique},
    {"reverse", f_reverse},
    {"sort", f_sort},
    {"dictsort", f_dictsort},
    {"sum", f_sum}, {"min", f_sum}, {"max", f_sum},
    {"safe", f_safe},
    {"escape", f_escape}, {"e", f_escape},
};

}  // namespace

Value apply_filter(const std::string& f, const Value& v, Args& a) {
  DepthGuard guard;
  for (const auto& [name, fn] : kFilters)
    if (f == name) return fn(f, v, a);
  bad("no filter named '" + f + "'");
}

bool apply_test(const std::string& t, const Value& v, Args& a) {
  using K = Value::Kind;
  auto arg = [&]() -> const Value& {
    if (a.pos.empty()) bad("test '" + t + "' needs an argument");
    return a.pos[0];
  };
  if (t == "defined") return !v.is_undefined();
  if (t == "undefined") return v.is_undefined();
  if (t == "none") return v.is_none();
  if (t == "string") return v.is_string();
  if (t == "number") return v.is_number();
  if (t == "integer") return v.kind() == K::Int;
  if (t == "float") return v.kind() == K::Float;
  if (t == "boolean") return v.kind() == K::Bool;
  if (t == "true") return v.kind() == K::Bool && v.as_bool();
  if (t == "false") return v.kind() == K::Bool && !v.as_bool();
  if (t == "mapping") return v.is_dict();
  if (t == "iterable") return v.is_list() || v.is_dict() || v.is_string();
  if (t == "sequence") return v.is_list() || v.is_dict() || v.is_string();
  if (t == "callable") return v.is_callable();
  if (t == "even") return py_mod(v.as_int(), 2) == 0;
  if (t == "odd") return py_mod(v.as_int(), 2) != 0;
  if (t == "divisibleby") return arg().as_int() != 0 && py_mod(v.as_int(), arg().as_int()) == 0;
  if (t == "eq" || t == "equalto" || t == "==") return equal(v, arg());
  if (t == "ne" || t == "!=") return !equal(v, arg());
  if (t == "lt" || t == "lessthan" || t == "<") return compare(v, arg()) < 0;
  if (t == "gt" || t == "greaterthan" || t == ">") return compare(v, arg()) > 0;
  if (t == "le" || t == "<=") return compare(v, arg()) <= 0;
  if (t == "ge" || t == ">=") return compare(v, arg()) >= 0;
  if (t == "in") return contains(arg(), v);
  if (t == "lower") return v.is_string() && lower(v.str()) == v.str();
  if (t == "upper") return v.is_string() && upper(v.str()) == v.str();
  bad("no test named '" + t + "'");
}

}  // namespace camelid::jinja
