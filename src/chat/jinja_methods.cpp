// Methods of str/dict/list, the globals, and the container primitives (subscript, slice, in,
// iteration), with Python's behaviour. Each is linear in what it reads and builds, and charges
// the render's budget for it (jinja_sandbox.h).
#include <algorithm>
#include <cerrno>
#include <ctime>

#include "chat/jinja.h"
#include "chat/jinja_text.h"

namespace camelid::jinja {
namespace {

bool is_ascii(const std::string& s) {
  tick_bytes(s.size());
  return std::all_of(s.begin(), s.end(), [](char c) { return (uint8_t(c) & 0x80) == 0; });
}

// Python's range(): at most max_range items (jinja2's sandbox: MAX_RANGE), counted in 128 bits
// so that range(-2**63, 2**63 - 1) is refused rather than overflowing.
Value range(Args& a) {
  int64_t start = 0, stop, step = 1;
  if (a.pos.size() == 1) stop = a.pos[0].as_int();
  else if (a.pos.size() >= 2) start = a.pos[0].as_int(), stop = a.pos[1].as_int(), step = a.pos.size() > 2 ? a.pos[2].as_int() : 1;
  else bad("range expected at least 1 argument");
  if (step == 0) bad("range() arg 3 must not be zero");
  const __int128 span = step > 0 ? __int128(stop) - start : __int128(start) - stop;
  const __int128 mag = step > 0 ? __int128(step) : -__int128(step);
  const __int128 n = span <= 0 ? 0 : (span + mag - 1) / mag;
  const int64_t max = active_limits().max_range;
  if (n > max) throw LimitError("range() of more than " + std::to_string(max) + " items");
  List out;
  out.reserve(size_t(n));
  for (int64_t k = 0; k < int64_t(n); ++k) out.push_back(Value(int64_t(start + __int128(k) * step)));
  return Value(std::move(out));
}

}  // namespace

List iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::List: tick_items(v.list().size()); return v.list();
    case Value::Kind::Dict: {
      List keys;
      keys.reserve(v.dict().size());
      for (auto& [k, x] : v.dict()) keys.push_back(Value(k));
      return keys;
    }
    case Value::Kind::String: {
      const std::string& s = v.str();
      check_memory(s.size() * sizeof(Value));
      List chars;
      for (size_t i = 0; i < s.size();) {
        size_t j = i + 1;
        while (j < s.size() && (uint8_t(s[j]) & 0xC0) == 0x80) ++j;
        chars.push_back(Value(s.substr(i, j - i)));
        i = j;
      }
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
    return TextFinder(item.str()).find(c.str()) != std::string::npos;
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
    const std::string& s = obj.str();
    int64_t i = key.as_int();
    if (i < 0) i += int64_t(char_count(s));
    if (i < 0) return Value();
    const size_t b = char_offset(s, size_t(i));
    if (b >= s.size()) return Value();
    size_t e = b + 1;
    while (e < s.size() && (uint8_t(s[e]) & 0xC0) == 0x80) ++e;
    return Value(s.substr(b, e - b));
  }
  return Value();
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  const bool str = obj.is_string();
  if (!str && !obj.is_list()) return Value();
  // Character offsets of a non-ASCII string (plus its end); ASCII strings index bytes directly.
  std::vector<size_t> at;
  if (str && !is_ascii(obj.str())) {
    check_memory(obj.str().size() * sizeof(size_t));
    for (size_t i = 0; i < obj.str().size(); ++i)
      if ((uint8_t(obj.str()[i]) & 0xC0) != 0x80) at.push_back(i);
    at.push_back(obj.str().size());
  }
  const int64_t n = !str ? int64_t(obj.list().size()) : at.empty() ? int64_t(obj.str().size()) : int64_t(at.size()) - 1;
  const int64_t st = step.is_none() ? 1 : step.as_int();
  if (st == 0) bad("slice step cannot be zero");
  auto clamp = [&](const Value& v, int64_t def) {
    if (v.is_none()) return def;
    int64_t i = v.as_int();
    if (i < 0) i += n;
    return st > 0 ? std::clamp<int64_t>(i, 0, n) : std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t b = clamp(start, st > 0 ? 0 : n - 1), e = clamp(stop, st > 0 ? n : -1);
  // How many items, without ever stepping past the ends (a step of 2**62 must not overflow).
  const __int128 span = st > 0 ? __int128(e) - b : __int128(b) - e;
  const __int128 mag = st > 0 ? __int128(st) : -__int128(st);
  const int64_t count = span <= 0 ? 0 : int64_t((span + mag - 1) / mag);
  tick_items(size_t(count));
  List items;
  std::string s;
  for (int64_t k = 0; k < count; ++k) {
    const size_t i = size_t(b + __int128(k) * st);
    if (!str) items.push_back(obj.list()[i]);
    else if (at.empty()) s += obj.str()[i];
    else s.append(obj.str(), at[i], at[i + 1] - at[i]);
  }
  return str ? Value(std::move(s)) : Value(std::move(items));
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
      const List options = p->is_list() ? p->list() : List{*p};
      bool hit = false;
      for (const Value& o : options) {
        const std::string x = o.to_str();
        tick_bytes(x.size());
        hit = hit || (m == "startswith" ? s.compare(0, x.size(), x) == 0
                                        : s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0);
      }
      *r = Value(hit);
    } else if (m == "split") *r = Value(split(s, a.get(0, "sep"), int_arg(a, 1, "maxsplit", -1)));
    else if (m == "replace") *r = Value(replace(s, str_arg(a, 0, "old"), str_arg(a, 1, "new"), int_arg(a, 2, "count", -1)));
    else if (m == "find") {
      const std::string sub = str_arg(a, 0, "sub");
      const size_t at = TextFinder(sub).find(s);
      *r = Value(at == std::string::npos ? int64_t(-1) : int64_t(char_count(s.substr(0, at))));
    } else if (m == "count") {
      const std::string x = str_arg(a, 0, "x");
      const TextFinder finder(x);
      int64_t n = 0;
      for (size_t at = finder.find(s); !x.empty() && at != std::string::npos; at = finder.find(s, at + x.size())) ++n;
      *r = Value(x.empty() ? int64_t(char_count(s)) + 1 : n);
    } else if (m == "join") *r = Value(join(iterate(a.pos.empty() ? Value() : a.pos[0]), s));
    else if (m == "splitlines") *r = Value(splitlines(s));
    else return false;
    // Markup's methods return Markup (those that build one string from this one).
    if (obj.is_safe() && r->is_string() && (m == "strip" || m == "lstrip" || m == "rstrip" || m == "upper" || m == "lower" || m == "title" || m == "capitalize"))
      *r = Value::markup(r->str());
    return true;
  }
  if (obj.is_dict()) {
    if (m == "items") {
      List out;
      out.reserve(obj.dict().size());
      for (auto& [k, x] : obj.dict()) out.push_back(Value::tuple(List{Value(k), x}));
      *r = Value(std::move(out));
    } else if (m == "keys" || m == "values") {
      List out;
      out.reserve(obj.dict().size());
      for (auto& [k, x] : obj.dict()) out.push_back(m == "keys" ? Value(k) : x);
      *r = Value(std::move(out));
    } else if (m == "get") {
      const Value* k = a.get(0, "key");
      Value x = k ? obj.get(k->to_str()) : Value();
      const Value* def = a.get(1, "default");
      *r = x.is_undefined() ? (def ? *def : Value::none()) : x;
    } else if (m == "update" && !obj.is_namespace()) {
      if (!a.pos.empty() && a.pos[0].is_dict()) {
        const Dict from = a.pos[0].dict();  // a copy: d.update(d) must not read what it writes
        for (auto& [k, x] : from) obj.set(k, x);
      }
      for (auto& [k, x] : a.kw) obj.set(k, x);
      *r = Value::none();
    } else {
      return false;
    }
    return true;
  }
  if (obj.is_list()) {
    if (m == "append") {
      if (a.pos.empty()) bad("append() takes an argument");
      obj.append(a.pos[0]);
      *r = Value::none();
    } else if (m == "pop") {
      if (obj.list().empty()) bad("pop from empty list");
      int64_t i = int_arg(a, 0, "index", -1), n = int64_t(obj.list().size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) bad("pop index out of range");
      tick_items(size_t(n - i));
      *r = obj.list()[size_t(i)];
      obj.list().erase(obj.list().begin() + long(i));
    } else if (m == "index") {
      const Value x = a.pos.empty() ? Value() : a.pos[0];
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
  if (name == "range") return Value(Function(range));
  if (name == "namespace" || name == "dict")
    return Value(Function([name](Args& a) {
      Value d(Dict{});
      if (!a.pos.empty() && a.pos[0].is_dict()) {
        const Dict from = a.pos[0].dict();
        for (auto& [k, x] : from) d.set(k, x);
      }
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
