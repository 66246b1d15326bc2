#include "chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>

namespace camelid::jinja {

namespace {
// What one entry costs a render, beyond its text: the shared box and its control block.
constexpr size_t kBoxBytes = 64;
constexpr size_t kEntryBytes = sizeof(std::pair<std::string, Value>);

// Containers whose destruction is deferred (see release_containers).
struct Graveyard {
  std::vector<std::shared_ptr<void>> pending;
  bool draining = false;
};
thread_local Graveyard graveyard;
}  // namespace

const Value* Args::get(size_t i, const char* name) const {
  for (auto& [k, v] : kw)
    if (k == name) return &v;
  return i < pos.size() ? &pos[i] : nullptr;
}

Value::Value(std::string s) : kind_(Kind::String) {
  tick_bytes(s.size());
  check_string_size(s.size());
  auto box = std::make_shared<StrBox>();
  box->s = std::move(s);
  box->charge.add(box->s.size() + kBoxBytes);
  s_ = std::move(box);
}

Value::Value(List l) : kind_(Kind::List), l_(std::make_shared<ListBox>()) {
  tick_items(l.size());
  l_->items = std::move(l);
  l_->charge.add(l_->items.size() * sizeof(Value) + kBoxBytes);
  for (const Value& x : l_->items) x.mark_contained();
}

Value::Value(Dict d) : kind_(Kind::Dict), m_(std::make_shared<DictBox>()) {
  tick_items(d.size());
  size_t bytes = kBoxBytes + d.size() * kEntryBytes;
  for (const auto& [k, x] : d) bytes += k.size(), x.mark_contained();
  m_->items = std::move(d);
  m_->charge.add(bytes);
}

void Value::mark_contained() const {
  if (l_) l_->contained = true;
  if (m_) m_->contained = true;
}

// Destroying a list frees its items, which may free their lists, and so on: recursion as deep as
// the value. Instead the first destructor on the stack drains a queue of the boxes that nested
// destructors hand it, so the stack stays flat for any depth.
void Value::release_containers() noexcept {
  Graveyard& g = graveyard;
  if (g.draining) {
    if (l_) g.pending.push_back(std::move(l_));
    if (m_) g.pending.push_back(std::move(m_));
    return;
  }
  g.draining = true;
  l_.reset();
  m_.reset();
  while (!g.pending.empty()) {
    std::shared_ptr<void> box = std::move(g.pending.back());
    g.pending.pop_back();
    box.reset();
  }
  g.draining = false;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  DepthGuard guard;
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();  // past int64: a float, as nothing here has big ints
      return u <= uint64_t(INT64_MAX) ? Value(int64_t(u)) : Value(double(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List l;
      l.reserve(j.size());
      for (const auto& e : j) l.push_back(from_json(e));
      return Value(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      d.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) d.emplace_back(it.key(), from_json(it.value()));
      return Value(std::move(d));
    }
    default: return Value();
  }
}

int64_t Value::as_int() const {
  if (kind_ != Kind::Float) return i_;
  // int64 holds [-2^63, 2^63); NaN fails both comparisons.
  if (!(d_ >= -9223372036854775808.0 && d_ < 9223372036854775808.0))
    throw LimitError("cannot convert float " + format_float(d_) + " to an integer (64 bits)");
  return int64_t(d_);
}
double Value::as_double() const { return kind_ == Kind::Float ? d_ : double(i_); }

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool:
    case Kind::Int: return i_ != 0;
    case Kind::Float: return d_ != 0.0;
    case Kind::String: return !s_->s.empty();
    case Kind::List: return !l_->items.empty();
    case Kind::Dict: return !m_->items.empty();
    case Kind::Function: return true;
  }
  return false;
}

// Dict lookups scan: n entries, each compared with a key that may be long.
static void tick_scan(size_t n, const std::string& key) { tick(1 + int64_t((n * (32 + key.size())) >> 8)); }  // memcmp-fast

Value Value::get(const std::string& key) const {
  if (kind_ != Kind::Dict) return Value();
  tick_scan(m_->items.size(), key);
  for (auto& [k, v] : m_->items)
    if (k == key) return v;
  return Value();
}

// Whether this value holds `box` (a ListBox or DictBox) at any depth. Iterative, each box once.
bool Value::contains_box(const void* box) const {
  std::vector<const Value*> todo{this};
  std::unordered_set<const void*> seen;
  while (!todo.empty()) {
    const Value* v = todo.back();
    todo.pop_back();
    const void* b = v->l_ ? static_cast<const void*>(v->l_.get()) : static_cast<const void*>(v->m_.get());
    if (!b) continue;
    if (b == box) return true;
    if (!seen.insert(b).second) continue;
    tick(1);
    if (v->l_)
      for (const Value& x : v->l_->items) todo.push_back(&x);
    else
      for (const auto& [k, x] : v->m_->items) todo.push_back(&x);
  }
  return false;
}

void Value::set(const std::string& key, Value v) const {
  if (kind_ != Kind::Dict) throw TemplateError(std::string("cannot set attribute '") + key + "' on a " + type_name());
  if (v.m_ == m_ || (m_->contained && v.contains_box(m_.get()))) throw TemplateError("cannot put a dict inside itself");
  tick_scan(m_->items.size(), key);
  v.mark_contained();
  for (auto& [k, old] : m_->items)
    if (k == key) { old = std::move(v); return; }
  m_->charge.add(kEntryBytes + key.size());
  m_->items.emplace_back(key, std::move(v));
}

void Value::append(Value v) const {
  if (kind_ != Kind::List) throw TemplateError(std::string("'") + type_name() + "' object has no attribute 'append'");
  if (v.l_ == l_ || (l_->contained && v.contains_box(l_.get()))) throw TemplateError("cannot put a list inside itself");
  tick(1);
  l_->charge.add(sizeof(Value));
  v.mark_contained();
  l_->items.push_back(std::move(v));
}

const char* Value::type_name() const {
  switch (kind_) {
    case Kind::Undefined: return "undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return "list";
    case Kind::Dict: return ns_ ? "Namespace" : "dict";
    case Kind::Function: return "function";
  }
  return "?";
}

// Python's repr(float): the shortest digits that read back the same double, in fixed notation
// for exponents -4..15 (always with a '.'), else d.ddde+XX.
std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);  // [-]d[.ddd]e[+-]XX
  std::string sci(buf, res.ptr), out;
  if (sci[0] == '-') out = "-", sci.erase(0, 1);
  const size_t e = sci.find('e');
  const int exp = std::atoi(sci.c_str() + e + 1);
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  if (exp >= -4 && exp < 16) {
    if (exp < 0) out += "0." + std::string(size_t(-exp - 1), '0') + digits;
    else if (digits.size() <= size_t(exp) + 1) out += digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
    else out += digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += eb;
  }
  return out;
}

std::string Value::to_str() const {
  switch (kind_) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return i_ ? "True" : "False";
    case Kind::Int: return std::to_string(i_);
    case Kind::Float: return format_float(d_);
    case Kind::String: return s_->s;
    case Kind::Function: return "<function>";
    case Kind::List:
    case Kind::Dict: return repr();
  }
  return "";
}

namespace {
// Appends to a text that a render builds piece by piece (repr, tojson): within max_string.
void grow(std::string& out, const std::string& more) {
  check_string_size(out.size() + more.size());
  out += more;
}

void py_quote(const std::string& s, std::string& out) {
  tick_bytes(s.size());
  check_string_size(out.size() + s.size() + 2);
  // Python prefers single quotes, double when the text has a ' but no ".
  const char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string quoted(1, q);
  for (unsigned char c : s) {
    if (c == '\\') quoted += "\\\\";
    else if (c == q) quoted += std::string("\\") + char(q);
    else if (c == '\n') quoted += "\\n";
    else if (c == '\r') quoted += "\\r";
    else if (c == '\t') quoted += "\\t";
    else if (c < 0x20 || c == 0x7F) { char b[8]; std::snprintf(b, sizeof b, "\\x%02x", c); quoted += b; }
    else quoted += char(c);
  }
  grow(out, quoted += q);
}

void repr_into(const Value& v, std::string& out) {
  DepthGuard guard;
  tick(1);
  switch (v.kind()) {
    case Value::Kind::String:
      if (v.is_safe()) grow(out, "Markup(");
      py_quote(v.str(), out);
      if (v.is_safe()) grow(out, ")");
      return;
    case Value::Kind::List: {
      grow(out, v.is_tuple() ? "(" : "[");
      bool first = true;
      for (const Value& x : v.list()) {
        if (!first) grow(out, ", ");
        first = false;
        repr_into(x, out);
      }
      grow(out, !v.is_tuple() ? "]" : v.list().size() == 1 ? ",)" : ")");
      return;
    }
    case Value::Kind::Dict: {
      grow(out, "{");
      bool first = true;
      for (const auto& [k, x] : v.dict()) {
        if (!first) grow(out, ", ");
        first = false;
        py_quote(k, out);
        grow(out, ": ");
        repr_into(x, out);
      }
      grow(out, "}");
      return;
    }
    default: grow(out, v.to_str());
  }
}

void json_string(const std::string& s, std::string& out, bool ensure_ascii) {
  tick_bytes(s.size());
  check_string_size(out.size() + s.size() + 2);
  std::string q = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = uint8_t(s[i]);
    switch (c) {
      case '"': q += "\\\""; break;
      case '\\': q += "\\\\"; break;
      case '\n': q += "\\n"; break;
      case '\r': q += "\\r"; break;
      case '\t': q += "\\t"; break;
      case '\b': q += "\\b"; break;
      case '\f': q += "\\f"; break;
      default:
        if (c < 0x20 || (c == 0x7F && ensure_ascii)) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          q += b;
        } else if (c >= 0x80 && ensure_ascii) {  // \uXXXX per UTF-16 unit, as Python
          const int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
          uint32_t cp = n == 3 ? c & 0x07 : n == 2 ? c & 0x0F : c & 0x1F;
          for (int k = 0; k < n && i + 1 < s.size() && (uint8_t(s[i + 1]) & 0xC0) == 0x80; ++k) cp = (cp << 6) | (uint8_t(s[++i]) & 0x3F);
          char b[16];
          if (cp >= 0x10000) {
            cp -= 0x10000;
            std::snprintf(b, sizeof b, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
          } else {
            std::snprintf(b, sizeof b, "\\u%04x", cp);
          }
          q += b;
        } else {
          q += char(c);
        }
    }
  }
  grow(out, q += '"');
}

void json_dump(const Value& v, const Value::JsonStyle& st, int64_t depth, std::string& out) {
  DepthGuard guard;
  tick(1);
  auto newline = [&](int64_t d) {
    // the indent d times; both are bounded (depth by DepthGuard), but the indent is the template's.
    const size_t max = active_limits().max_string;
    if (st.indent.size() > max || uint64_t(st.indent.size()) * uint64_t(d) + 1 > max - std::min(max, out.size()))
      throw LimitError("string longer than " + mib(max));
    tick_bytes(st.indent.size() * size_t(d));
    out += '\n';
    for (int64_t k = 0; k < d; ++k) out += st.indent;
  };
  switch (v.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None: grow(out, "null"); return;
    case Value::Kind::Bool: grow(out, v.as_bool() ? "true" : "false"); return;
    case Value::Kind::Int: grow(out, std::to_string(v.as_int())); return;
    case Value::Kind::Float: {
      const double d = v.as_double();
      grow(out, std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : format_float(d));
      return;
    }
    case Value::Kind::String: json_string(v.str(), out, st.ensure_ascii); return;
    case Value::Kind::Function: throw TemplateError("Object of type function is not JSON serializable");
    case Value::Kind::List: {
      if (v.list().empty()) { grow(out, "[]"); return; }
      grow(out, "[");
      bool first = true;
      for (const Value& e : v.list()) {
        if (!first) grow(out, st.item_sep);
        first = false;
        if (st.pretty) newline(depth + 1);
        json_dump(e, st, depth + 1, out);
      }
      if (st.pretty) newline(depth);
      grow(out, "]");
      return;
    }
    case Value::Kind::Dict: {
      if (v.dict().empty()) { grow(out, "{}"); return; }
      Dict items = v.dict();
      tick_items(items.size());
      if (st.sort_keys)
        std::stable_sort(items.begin(), items.end(), [](auto& a, auto& b) {
          tick_bytes(std::min(a.first.size(), b.first.size()));
          return a.first < b.first;
        });
      grow(out, "{");
      bool first = true;
      for (const auto& [k, e] : items) {
        if (!first) grow(out, st.item_sep);
        first = false;
        if (st.pretty) newline(depth + 1);
        json_string(k, out, st.ensure_ascii);
        grow(out, st.key_sep);
        json_dump(e, st, depth + 1, out);
      }
      if (st.pretty) newline(depth);
      grow(out, "}");
      return;
    }
  }
}
}  // namespace

std::string Value::repr() const {
  std::string out;
  repr_into(*this, out);
  return out;
}

std::string Value::to_json(int64_t indent, bool sort_keys) const {
  JsonStyle st;
  st.sort_keys = sort_keys;
  if (indent >= 0) {
    if (uint64_t(indent) > active_limits().max_string) throw LimitError("string longer than " + mib(active_limits().max_string));
    st.pretty = true, st.indent.assign(size_t(indent), ' '), st.item_sep = ",";
  }
  return to_json(st);
}

std::string Value::to_json(const JsonStyle& style) const {
  std::string out;
  json_dump(*this, style, 0, out);
  return out;
}

bool equal(const Value& a, const Value& b) {
  using K = Value::Kind;
  DepthGuard guard;
  tick(1);
  if ((a.is_number() || a.kind() == K::Bool) && (b.is_number() || b.kind() == K::Bool)) {
    if (a.kind() != K::Float && b.kind() != K::Float) return a.as_int() == b.as_int();  // exact past 2^53
    return a.as_double() == b.as_double();
  }
  if (a.kind() != b.kind() || (a.is_list() && a.is_tuple() != b.is_tuple())) return false;
  switch (a.kind()) {
    case K::Undefined:
    case K::None: return true;
    case K::String: tick_bytes(std::min(a.str().size(), b.str().size())); return a.str() == b.str();
    case K::List:
      if (a.list().size() != b.list().size()) return false;
      for (size_t i = 0; i < a.list().size(); ++i)
        if (!equal(a.list()[i], b.list()[i])) return false;
      return true;
    case K::Dict:
      if (a.dict().size() != b.dict().size()) return false;
      for (auto& [k, v] : a.dict())
        if (!equal(v, b.get(k))) return false;
      return true;
    default: return false;
  }
}

int compare(const Value& a, const Value& b) {
  DepthGuard guard;
  tick(1);
  if ((a.is_number() || a.kind() == Value::Kind::Bool) && (b.is_number() || b.kind() == Value::Kind::Bool)) {
    if (a.kind() != Value::Kind::Float && b.kind() != Value::Kind::Float)
      return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
    const double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    tick_bytes(std::min(a.str().size(), b.str().size()));
    return a.str().compare(b.str());
  }
  if (a.is_list() && b.is_list()) {
    for (size_t i = 0; i < a.list().size() && i < b.list().size(); ++i)
      if (int c = compare(a.list()[i], b.list()[i])) return c;
    return a.list().size() < b.list().size() ? -1 : a.list().size() > b.list().size() ? 1 : 0;
  }
  throw TemplateError(std::string("'<' not supported between instances of '") + a.type_name() + "' and '" + b.type_name() + "'");
}

}  // namespace camelid::jinja
