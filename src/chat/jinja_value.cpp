#include "chat/jinja_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace camelid::jinja {

const Value* Args::get(size_t i, const char* name) const {
  for (auto& [k, v] : kw)
    if (k == name) return &v;
  return i < pos.size() ? &pos[i] : nullptr;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
    case nlohmann::ordered_json::value_t::number_unsigned: return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List l;
      for (const auto& e : j) l.push_back(from_json(e));
      return Value(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d.emplace_back(it.key(), from_json(it.value()));
      return Value(std::move(d));
    }
    default: return Value();
  }
}

int64_t Value::as_int() const { return kind_ == Kind::Float ? int64_t(d_) : i_; }
double Value::as_double() const { return kind_ == Kind::Float ? d_ : double(i_); }

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool:
    case Kind::Int: return i_ != 0;
    case Kind::Float: return d_ != 0.0;
    case Kind::String: return !s_->empty();
    case Kind::List: return !l_->empty();
    case Kind::Dict: return !m_->empty();
    case Kind::Function: return true;
  }
  return false;
}

Value Value::get(const std::string& key) const {
  if (kind_ == Kind::Dict)
    for (auto& [k, v] : *m_)
      if (k == key) return v;
  return Value();
}

void Value::set(const std::string& key, Value v) const {
  if (kind_ != Kind::Dict) throw TemplateError(std::string("cannot set attribute '") + key + "' on a " + type_name());
  for (auto& [k, old] : *m_)
    if (k == key) { old = std::move(v); return; }
  m_->emplace_back(key, std::move(v));
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

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[40];
  for (int prec = 1; prec <= 17; ++prec) {  // shortest text that reads back the same double
    std::snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string Value::to_str() const {
  switch (kind_) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return i_ ? "True" : "False";
    case Kind::Int: return std::to_string(i_);
    case Kind::Float: return format_float(d_);
    case Kind::String: return *s_;
    case Kind::Function: return "<function>";
    case Kind::List:
    case Kind::Dict: return repr();
  }
  return "";
}

namespace {
std::string py_quote(const std::string& s) {
  // Python prefers single quotes, double when the text has a ' but no ".
  const char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == q) out += std::string("\\") + char(q);
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7F) { char b[8]; std::snprintf(b, sizeof b, "\\x%02x", c); out += b; }
    else out += char(c);
  }
  return out + q;
}

void json_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || c == 0x7F) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); out += b; }
        else out += char(c);
    }
  }
  out += '"';
}

void json_dump(const Value& v, int indent, bool sort_keys, int depth, std::string& out) {
  const bool pretty = indent >= 0;
  auto newline = [&](int d) {
    out += '\n';
    out.append(size_t(indent * d), ' ');
  };
  switch (v.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None: out += "null"; return;
    case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::Int: out += std::to_string(v.as_int()); return;
    case Value::Kind::Float: {
      const double d = v.as_double();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : format_float(d);
      return;
    }
    case Value::Kind::String: json_string(v.str(), out); return;
    case Value::Kind::Function: throw TemplateError("Object of type function is not JSON serializable");
    case Value::Kind::List: {
      if (v.list().empty()) { out += "[]"; return; }
      out += '[';
      bool first = true;
      for (const Value& e : v.list()) {
        if (!first) out += pretty ? "," : ", ";
        first = false;
        if (pretty) newline(depth + 1);
        json_dump(e, indent, sort_keys, depth + 1, out);
      }
      if (pretty) newline(depth);
      out += ']';
      return;
    }
    case Value::Kind::Dict: {
      if (v.dict().empty()) { out += "{}"; return; }
      Dict items = v.dict();
      if (sort_keys) std::stable_sort(items.begin(), items.end(), [](auto& a, auto& b) { return a.first < b.first; });
      out += '{';
      bool first = true;
      for (const auto& [k, e] : items) {
        if (!first) out += pretty ? "," : ", ";
        first = false;
        if (pretty) newline(depth + 1);
        json_string(k, out);
        out += ": ";
        json_dump(e, indent, sort_keys, depth + 1, out);
      }
      if (pretty) newline(depth);
      out += '}';
      return;
    }
  }
}
}  // namespace

std::string Value::repr() const {
  switch (kind_) {
    case Kind::String: return py_quote(*s_);
    case Kind::List: {
      std::string out = "[";
      for (size_t i = 0; i < l_->size(); ++i) out += (i ? ", " : "") + (*l_)[i].repr();
      return out + "]";
    }
    case Kind::Dict: {
      std::string out = "{";
      for (size_t i = 0; i < m_->size(); ++i) out += (i ? ", " : "") + py_quote((*m_)[i].first) + ": " + (*m_)[i].second.repr();
      return out + "}";
    }
    default: return to_str();
  }
}

std::string Value::to_json(int indent, bool sort_keys) const {
  std::string out;
  json_dump(*this, indent, sort_keys, 0, out);
  return out;
}

bool equal(const Value& a, const Value& b) {
  using K = Value::Kind;
  if ((a.is_number() || a.kind() == K::Bool) && (b.is_number() || b.kind() == K::Bool)) return a.as_double() == b.as_double();
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::Undefined:
    case K::None: return true;
    case K::String: return a.str() == b.str();
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
  if ((a.is_number() || a.kind() == Value::Kind::Bool) && (b.is_number() || b.kind() == Value::Kind::Bool)) {
    const double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) return a.str().compare(b.str());
  if (a.is_list() && b.is_list()) {
    for (size_t i = 0; i < a.list().size() && i < b.list().size(); ++i)
      if (int c = compare(a.list()[i], b.list()[i])) return c;
    return a.list().size() < b.list().size() ? -1 : a.list().size() > b.list().size() ? 1 : 0;
  }
  throw TemplateError(std::string("'<' not supported between instances of '") + a.type_name() + "' and '" + b.type_name() + "'");
}

}  // namespace camelid::jinja
