// Filters, tests, methods of str/dict/list, and globals, with Jinja2/Python behaviour.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>

#include "chat/jinja.h"

namespace camelid::jinja {
namespace {

[[noreturn]] void bad(const std::string& msg) { throw TemplateError(msg); }

// Byte offsets of the code points of s (plus s.size()), so str indexing works on characters.
std::vector<size_t> char_starts(const std::string& s) {
  std::vector<size_t> at;
  for (size_t i = 0; i < s.size(); ++i)
    if ((uint8_t(s[i]) & 0xC0) != 0x80) at.push_back(i);
  at.push_back(s.size());
  return at;
}

const char* kWs = " \t\n\r\f\v";

std::string strip(const std::string& s, const std::string& chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left) while (b < e && chars.find(s[b]) != std::string::npos) ++b;
  if (right) while (e > b && chars.find(s[e - 1]) != std::string::npos) --e;
  return s.substr(b, e - b);
}

std::string lower(std::string s) { for (char& c : s) c = char(std::tolower(uint8_t(c))); return s; }
std::string upper(std::string s) { for (char& c : s) c = char(std::toupper(uint8_t(c))); return s; }
std::string title(std::string s) {
  bool start = true;
  for (char& c : s) {
    const bool alpha = std::isalpha(uint8_t(c));
    c = alpha ? char(start ? std::toupper(uint8_t(c)) : std::tolower(uint8_t(c))) : c;
    start = !alpha && !(uint8_t(c) & 0x80);
  }
  return s;
}
std::string capitalize(std::string s) {
  s = lower(s);
  if (!s.empty()) s[0] = char(std::toupper(uint8_t(s[0])));
  return s;
}

std::string replace(std::string s, const std::string& from, const std::string& to, int64_t count = -1) {
  if (from.empty()) return s;
  size_t at = 0;
  for (int64_t n = 0; (count < 0 || n < count) && (at = s.find(from, at)) != std::string::npos; ++n)
    s.replace(at, from.size(), to), at += to.size();
  return s;
}

List split(const std::string& s, const Value* sep, int64_t maxsplit) {
  List out;
  if (!sep || sep->is_none()) {  // runs of whitespace, no empty parts
    size_t i = 0;
    while (true) {
      while (i < s.size() && std::strchr(kWs, s[i])) ++i;
      if (i >= s.size()) break;
      if (maxsplit >= 0 && int64_t(out.size()) == maxsplit) { out.push_back(Value(strip(s.substr(i), kWs, false, true))); break; }
      size_t j = i;
      while (j < s.size() && !std::strchr(kWs, s[j])) ++j;
      out.push_back(Value(s.substr(i, j - i)));
      i = j;
    }
    return out;
  }
  const std::string& d = sep->str();
  if (d.empty()) bad("empty separator");
  size_t i = 0, at;
  while ((maxsplit < 0 || int64_t(out.size()) < maxsplit) && (at = s.find(d, i)) != std::string::npos) {
    out.push_back(Value(s.substr(i, at - i)));
    i = at + d.size();
  }
  out.push_back(Value(s.substr(i)));
  return out;
}

int64_t int_arg(const Args& a, size_t i, const char* name, int64_t def) {
  const Value* v = a.get(i, name);
  return v && v->is_number() ? v->as_int() : def;
}
std::string str_arg(const Args& a, size_t i, const char* name) {
  const Value* v = a.get(i, name);
  if (!v || !v->is_string()) bad(std::string("expected a string argument '") + name + "'");
  return v->str();
}

// Attribute of each item, dotted paths allowed ("function.name").
Value attribute(const Value& item, const std::string& path) {
  Value v = item;
  size_t b = 0;
  while (b <= path.size()) {
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

std::string indent(const std::string& s, int64_t width, bool first, bool blank) {
  const std::string pad(size_t(std::max<int64_t>(0, width)), ' ');
  std::string out;
  size_t i = 0;
  bool at_first = true;
  while (i <= s.size()) {
    const size_t nl = s.find('\n', i);
    const std::string line = s.substr(i, nl == std::string::npos ? std::string::npos : nl - i);
    if ((at_first ? first : true) && (blank || !line.empty())) out += pad;
    out += line;
    at_first = false;
    if (nl == std::string::npos) break;
    out += '\n';
    i = nl + 1;
  }
  return out;
}

}  // namespace

List iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::List: return v.list();
    case Value::Kind::Dict: {
      List keys;
      for (auto& [k, x] : v.dict()) keys.push_back(Value(k));
      return keys;
    }
    case Value::Kind::String: {
      List chars;
      const auto at = char_starts(v.str());
      for (size_t i = 0; i + 1 < at.size(); ++i) chars.push_back(Value(v.str().substr(at[i], at[i + 1] - at[i])));
      return chars;
    }
    case Value::Kind::Undefined:
    case Value::Kind::None: return {};
    default: bad(std::string("'") + v.type_name() + "' object is not iterable");
  }
}

bool contains(const Value& c, const Value& item) {
  if (c.is_string()) {
    if (!item.is_string()) bad("'in <string>' requires string as left operand");
    return c.str().find(item.str()) != std::string::npos;
  }
  if (c.is_dict()) return item.is_string() && !c.get(item.str()).is_undefined();
  if (c.is_list()) return std::any_of(c.list().begin(), c.list().end(), [&](const Value& x) { return equal(x, item); });
  if (c.is_undefined() || c.is_none()) return false;
  bad(std::string("argument of type '") + c.type_name() + "' is not iterable");
}

Value subscript(const Value& obj, const Value& key) {
  if (obj.is_dict()) return key.is_string() ? obj.get(key.str()) : key.is_number() ? obj.get(key.to_str()) : Value();
  if ((obj.is_list() || obj.is_string()) && key.kind() == Value::Kind::Int) {
    if (obj.is_list()) {
      int64_t i = key.as_int(), n = int64_t(obj.list().size());
      if (i < 0) i += n;
      return i >= 0 && i < n ? obj.list()[size_t(i)] : Value();
    }
    const auto at = char_starts(obj.str());
    int64_t i = key.as_int(), n = int64_t(at.size()) - 1;
    if (i < 0) i += n;
    return i >= 0 && i < n ? Value(obj.str().substr(at[size_t(i)], at[size_t(i) + 1] - at[size_t(i)])) : Value();
  }
  return Value();
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  const bool str = obj.is_string();
  if (!str && !obj.is_list()) return Value();
  std::vector<size_t> at;
  if (str) at = char_starts(obj.str());
  const int64_t n = str ? int64_t(at.size()) - 1 : int64_t(obj.list().size());
  const int64_t st = step.is_none() ? 1 : step.as_int();
  if (st == 0) bad("slice step cannot be zero");
  auto clamp = [&](const Value& v, int64_t def) {
    if (v.is_none()) return def;
    int64_t i = v.as_int();
    if (i < 0) i += n;
    return st > 0 ? std::clamp<int64_t>(i, 0, n) : std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t b = clamp(start, st > 0 ? 0 : n - 1), e = clamp(stop, st > 0 ? n : -1);
  List items;
  std::string s;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) {
    if (str) s += obj.str().substr(at[size_t(i)], at[size_t(i) + 1] - at[size_t(i)]);
    else items.push_back(obj.list()[size_t(i)]);
  }
  return str ? Value(s) : Value(std::move(items));
}

Value apply_filter(const std::string& f, const Value& v, Args& a) {
  if (f == "trim") return Value(strip(v.to_str(), a.get(0, "chars") ? a.get(0, "chars")->to_str() : kWs, true, true));
  if (f == "tojson") {
    const Value* ind = a.get(0, "indent");
    const Value* sk = a.get(99, "sort_keys");
    return Value(v.to_json(ind && ind->is_number() ? int(ind->as_int()) : -1, sk && sk->truthy()));
  }
  if (f == "length" || f == "count") {
    if (v.is_string()) return Value(int64_t(char_starts(v.str()).size() - 1));
    if (v.is_list()) return Value(int64_t(v.list().size()));
    if (v.is_dict()) return Value(int64_t(v.dict().size()));
    if (v.is_undefined()) return Value(int64_t(0));
    bad(std::string("object of type '") + v.type_name() + "' has no len()");
  }
  if (f == "string") return Value(v.to_str());
  if (f == "int") {
    if (v.is_number() || v.kind() == Value::Kind::Bool) return Value(v.as_int());
    if (v.is_string()) {
      char* end = nullptr;
      const std::string s = strip(v.str(), kWs, true, true);
      const double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end && *end == 0) return Value(int64_t(d));
    }
    return Value(int_arg(a, 0, "default", 0));
  }
  if (f == "float") {
    if (v.is_number() || v.kind() == Value::Kind::Bool) return Value(v.as_double());
    if (v.is_string()) {
      char* end = nullptr;
      const double d = std::strtod(v.str().c_str(), &end);
      if (!v.str().empty() && end && *end == 0) return Value(d);
    }
    const Value* d = a.get(0, "default");
    return d ? Value(d->as_double()) : Value(0.0);
  }
  if (f == "lower") return Value(lower(v.to_str()));
  if (f == "upper") return Value(upper(v.to_str()));
  if (f == "title") return Value(title(v.to_str()));
  if (f == "capitalize") return Value(capitalize(v.to_str()));
  if (f == "first" || f == "last") {
    const List items = iterate(v);
    if (items.empty()) return Value();
    return f == "first" ? items.front() : items.back();
  }
  if (f == "join") {
    const Value* attr = a.get(99, "attribute");
    std::string sep = a.get(0, "d") ? a.get(0, "d")->to_str() : "", out;
    bool first = true;
    for (const Value& x : iterate(v)) {
      out += (first ? "" : sep) + (attr ? attribute(x, attr->to_str()) : x).to_str();
      first = false;
    }
    return Value(out);
  }
  if (f == "default" || f == "d") {
    const Value* b = a.get(1, "boolean");
    const bool use_default = v.is_undefined() || (b && b->truthy() && !v.truthy());
    if (!use_default) return v;
    const Value* d = a.get(0, "default_value");
    return d ? *d : Value("");
  }
  if (f == "list") return Value(iterate(v));
  if (f == "items") {
    if (!v.is_dict()) bad("items filter needs a mapping");
    List out;
    for (auto& [k, x] : v.dict()) out.push_back(Value(List{Value(k), x}));
    return Value(std::move(out));
  }
  if (f == "replace") return Value(replace(v.to_str(), str_arg(a, 0, "old"), str_arg(a, 1, "new"), int_arg(a, 2, "count", -1)));
  if (f == "selectattr") return Value(select(v, a, true, true));
  if (f == "rejectattr") return Value(select(v, a, true, false));
  if (f == "select") return Value(select(v, a, false, true));
  if (f == "reject") return Value(select(v, a, false, false));
  if (f == "map") {
    List out;
    const Value* attr = a.get(99, "attribute");
    for (const Value& x : iterate(v)) {
      if (attr) {
        Value r = attribute(x, attr->to_str());
        const Value* def = a.get(99, "default");
        out.push_back(r.is_undefined() && def ? *def : r);
      } else {
        Args rest;
        rest.pos.assign(a.pos.begin() + 1, a.pos.end());
        out.push_back(apply_filter(str_arg(a, 0, "filter"), x, rest));
      }
    }
    return Value(std::move(out));
  }
  if (f == "indent") {
    const Value* fl = a.get(1, "first");
    const Value* bl = a.get(2, "blank");
    return Value(indent(v.to_str(), int_arg(a, 0, "width", 4), fl && fl->truthy(), bl && bl->truthy()));
  }
  if (f == "round") {
    const int64_t prec = int_arg(a, 0, "precision", 0);
    const Value* m = a.get(1, "method");
    const std::string method = m ? m->to_str() : "common";
    const double scale = std::pow(10.0, double(prec)), x = v.as_double() * scale;
    const double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::round(x);
    return Value(r / scale);
  }
  if (f == "abs") return v.kind() == Value::Kind::Float ? Value(std::fabs(v.as_double())) : Value(int64_t(std::llabs(v.as_int())));
  if (f == "unique") {
    List out;
    for (const Value& x : iterate(v))
      if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equal(x, y); })) out.push_back(x);
    return Value(std::move(out));
  }
  if (f == "reverse") {
    if (v.is_string()) return slice(v, Value::none(), Value::none(), Value(int64_t(-1)));
    List l = iterate(v);
    std::reverse(l.begin(), l.end());
    return Value(std::move(l));
  }
  if (f == "sort") {
    List l = iterate(v);
    const Value* rev = a.get(0, "reverse");
    const Value* attr = a.get(99, "attribute");
    std::stable_sort(l.begin(), l.end(), [&](const Value& x, const Value& y) {
      return attr ? compare(attribute(x, attr->to_str()), attribute(y, attr->to_str())) < 0 : compare(x, y) < 0;
    });
    if (rev && rev->truthy()) std::reverse(l.begin(), l.end());
    return Value(std::move(l));
  }
  if (f == "dictsort") {
    if (!v.is_dict()) bad("dictsort filter needs a mapping");
    Dict d = v.dict();
    std::stable_sort(d.begin(), d.end(), [](auto& x, auto& y) { return x.first < y.first; });
    List out;
    for (auto& [k, x] : d) out.push_back(Value(List{Value(k), x}));
    return Value(std::move(out));
  }
  if (f == "sum" || f == "min" || f == "max") {
    const List l = iterate(v);
    if (f == "sum") {
      Value acc(int64_t(0));
      for (const Value& x : l)
        acc = acc.kind() == Value::Kind::Float || x.kind() == Value::Kind::Float ? Value(acc.as_double() + x.as_double()) : Value(acc.as_int() + x.as_int());
      return acc;
    }
    if (l.empty()) return Value();
    Value best = l[0];
    for (const Value& x : l)
      if (f == "min" ? compare(x, best) < 0 : compare(x, best) > 0) best = x;
    return best;
  }
  if (f == "safe") return v;
  if (f == "escape" || f == "e") {
    std::string out;
    for (char c : v.to_str()) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
      }
    }
    return Value(out);
  }
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
  if (t == "even") return v.as_int() % 2 == 0;
  if (t == "odd") return v.as_int() % 2 != 0;
  if (t == "divisibleby") return arg().as_int() != 0 && v.as_int() % arg().as_int() == 0;
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

bool call_method(const Value& obj, const std::string& m, Args& a, Value* r) {
  if (obj.is_string()) {
    const std::string& s = obj.str();
    auto chars = [&](size_t i) { const Value* c = a.get(i, "chars"); return c && !c->is_none() ? c->to_str() : std::string(kWs); };
    if (m == "strip") *r = Value(strip(s, chars(0), true, true));
    else if (m == "lstrip") *r = Value(strip(s, chars(0), true, false));
    else if (m == "rstrip") *r = Value(strip(s, chars(0), false, true));
    else if (m == "upper") *r = Value(upper(s));
    else if (m == "lower") *r = Value(lower(s));
    else if (m == "title") *r = Value(title(s));
    else if (m == "capitalize") *r = Value(capitalize(s));
    else if (m == "startswith" || m == "endswith") {
      const Value* p = a.get(0, "prefix");
      if (!p) bad(m + "() takes an argument");
      List options = p->is_list() ? p->list() : List{*p};
      bool hit = false;
      for (const Value& o : options) {
        const std::string& x = o.to_str();
        hit = hit || (m == "startswith" ? s.compare(0, x.size(), x) == 0
                                        : s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0);
      }
      *r = Value(hit);
    } else if (m == "split") *r = Value(split(s, a.get(0, "sep"), int_arg(a, 1, "maxsplit", -1)));
    else if (m == "replace") *r = Value(replace(s, str_arg(a, 0, "old"), str_arg(a, 1, "new"), int_arg(a, 2, "count", -1)));
    else if (m == "find") { const size_t at = s.find(str_arg(a, 0, "sub")); *r = Value(at == std::string::npos ? int64_t(-1) : int64_t(char_starts(s.substr(0, at)).size() - 1)); }
    else if (m == "count") { int64_t n = 0; const std::string x = str_arg(a, 0, "x"); for (size_t at = s.find(x); !x.empty() && at != std::string::npos; at = s.find(x, at + x.size())) ++n; *r = Value(n); }
    else if (m == "join") { std::string out; bool first = true; for (const Value& x : iterate(a.pos.empty() ? Value() : a.pos[0])) { out += (first ? "" : s) + x.to_str(); first = false; } *r = Value(out); }
    else if (m == "splitlines") { List l = split(s, nullptr, -1); List out; size_t i = 0; while (i < s.size()) { size_t nl = s.find('\n', i); out.push_back(Value(strip(s.substr(i, nl == std::string::npos ? std::string::npos : nl - i), "\r", false, true))); if (nl == std::string::npos) break; i = nl + 1; } *r = Value(std::move(out)); }
    else return false;
    return true;
  }
  if (obj.is_dict()) {
    if (m == "items") {
      List out;
      for (auto& [k, x] : obj.dict()) out.push_back(Value(List{Value(k), x}));
      *r = Value(std::move(out));
    } else if (m == "keys" || m == "values") {
      List out;
      for (auto& [k, x] : obj.dict()) out.push_back(m == "keys" ? Value(k) : x);
      *r = Value(std::move(out));
    } else if (m == "get") {
      const Value* k = a.get(0, "key");
      Value x = k ? obj.get(k->to_str()) : Value();
      const Value* def = a.get(1, "default");
      *r = x.is_undefined() ? (def ? *def : Value::none()) : x;
    } else if (m == "update" && !obj.is_namespace()) {
      if (!a.pos.empty() && a.pos[0].is_dict())
        for (auto& [k, x] : a.pos[0].dict()) obj.set(k, x);
      for (auto& [k, x] : a.kw) obj.set(k, x);
      *r = Value::none();
    } else {
      return false;
    }
    return true;
  }
  if (obj.is_list()) {
    if (m == "append") { if (a.pos.empty()) bad("append() takes an argument"); obj.list().push_back(a.pos[0]); *r = Value::none(); }
    else if (m == "pop") {
      if (obj.list().empty()) bad("pop from empty list");
      int64_t i = int_arg(a, 0, "index", -1), n = int64_t(obj.list().size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) bad("pop index out of range");
      *r = obj.list()[size_t(i)];
      obj.list().erase(obj.list().begin() + long(i));
    } else if (m == "index") {
      const Value& x = a.pos.empty() ? Value() : a.pos[0];
      auto it = std::find_if(obj.list().begin(), obj.list().end(), [&](const Value& y) { return equal(x, y); });
      if (it == obj.list().end()) bad("value is not in list");
      *r = Value(int64_t(it - obj.list().begin()));
    } else {
      return false;
    }
    return true;
  }
  return false;
}

Value builtin_global(const std::string& name) {
  if (name == "range")
    return Value(Function([](Args& a) {
      int64_t start = 0, stop, step = 1;
      if (a.pos.size() == 1) stop = a.pos[0].as_int();
      else if (a.pos.size() >= 2) start = a.pos[0].as_int(), stop = a.pos[1].as_int(), step = a.pos.size() > 2 ? a.pos[2].as_int() : 1;
      else bad("range expected at least 1 argument");
      if (step == 0) bad("range() arg 3 must not be zero");
      if ((stop - start) / step > 1000000) bad("range() too large");
      List out;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(Value(i));
      return Value(std::move(out));
    }));
  if (name == "namespace" || name == "dict")
    return Value(Function([name](Args& a) {
      Value d(Dict{});
      if (!a.pos.empty() && a.pos[0].is_dict())
        for (auto& [k, x] : a.pos[0].dict()) d.set(k, x);
      for (auto& [k, x] : a.kw) d.set(k, x);
      if (name == "namespace") d.mark_namespace();
      return d;
    }));
  if (name == "raise_exception")
    return Value(Function([](Args& a) -> Value { throw RaisedError(a.pos.empty() ? "" : a.pos[0].to_str()); }));
  if (name == "strftime_now")
    return Value(Function([](Args& a) {
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[256];
      const size_t n = std::strftime(buf, sizeof buf, a.pos.empty() ? "" : a.pos[0].to_str().c_str(), &tm);
      return Value(std::string(buf, n));
    }));
  return Value();
}

}  // namespace camelid::jinja
