// Binary and unary operators. Integers are int64 with checked arithmetic: jinja2 has Python's big
// ints, so the honest answer to an overflow is an error, not a wrapped number. Strings and lists
// built by + * ~ are sized before they are built, so 'a' * 10**12 fails at once.
#include <cmath>
#include <limits>

#include "chat/jinja.h"
#include "chat/jinja_text.h"

namespace camelid::jinja {
namespace {

[[noreturn]] void overflow(int64_t a, const char* op, int64_t b) {
  throw LimitError("integer overflow: " + std::to_string(a) + " " + op + " " + std::to_string(b) +
                   " does not fit in 64 bits");
}

bool is_numeric(const Value& v) { return v.is_number() || v.kind() == Value::Kind::Bool; }

int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) overflow(a, "*", b);
  return r;
}

int64_t checked_pow(int64_t base, int64_t exp) {  // exp >= 0; at most 2*63 multiplications
  int64_t r = 1, b = base, e = exp;
  while (true) {
    if (e & 1)
      if (__builtin_mul_overflow(r, b, &r)) overflow(base, "**", exp);
    e >>= 1;
    if (!e) return r;
    if (__builtin_mul_overflow(b, b, &b)) overflow(base, "**", exp);
  }
}

int64_t floor_div(int64_t a, int64_t b) {  // b != 0; Python rounds toward negative infinity
  if (a == std::numeric_limits<int64_t>::min() && b == -1) overflow(a, "//", b);
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}

// text * n (or n * text): Python gives "" for n <= 0.
Value repeat_string(const std::string& s, int64_t n) {
  if (n <= 0 || s.empty()) return Value(std::string());
  const size_t max = active_limits().max_string;
  if (uint64_t(n) > max / s.size()) throw LimitError("string longer than " + mib(max));
  check_memory(s.size() * size_t(n));
  std::string out;
  out.reserve(s.size() * size_t(n));
  for (int64_t i = 0; i < n; ++i) out += s;
  return Value(std::move(out));
}

Value repeat_list(const List& l, int64_t n) {
  if (n <= 0 || l.empty()) return Value(List{});
  const size_t max_items = active_limits().max_memory / sizeof(Value);
  if (uint64_t(n) > max_items / l.size()) throw LimitError("render needs more than " + mib(active_limits().max_memory) + " of memory");
  check_memory(l.size() * size_t(n) * sizeof(Value));
  tick_items(l.size() * size_t(n));
  List out;
  out.reserve(l.size() * size_t(n));
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), l.begin(), l.end());
  return Value(std::move(out));
}

Value concat_strings(const std::string& a, const std::string& b) {
  check_string_size(a.size() + b.size());
  std::string out;
  out.reserve(a.size() + b.size());
  out += a;
  out += b;
  return Value(std::move(out));
}

}  // namespace

int64_t checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) overflow(a, "+", b);
  return r;
}

int64_t checked_abs(int64_t i) {
  if (i == std::numeric_limits<int64_t>::min()) throw LimitError("integer overflow: abs(" + std::to_string(i) + ") does not fit in 64 bits");
  return i < 0 ? -i : i;
}

int64_t py_mod(int64_t a, int64_t b) {
  if (b == -1) return 0;  // also INT64_MIN % -1, which traps in C++
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

Value negate(const Value& v) {
  if (!is_numeric(v)) throw TemplateError(std::string("bad operand type for unary -: '") + v.type_name() + "'");
  if (v.kind() == Value::Kind::Float) return Value(-v.as_double());
  if (v.as_int() == std::numeric_limits<int64_t>::min())
    throw LimitError("integer overflow: -(" + std::to_string(v.as_int()) + ") does not fit in 64 bits");
  return Value(-v.as_int());
}

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return Value(equal(a, b));
  if (op == "!=") return Value(!equal(a, b));
  if (op == "<") return Value(compare(a, b) < 0);
  if (op == ">") return Value(compare(a, b) > 0);
  if (op == "<=") return Value(compare(a, b) <= 0);
  if (op == ">=") return Value(compare(a, b) >= 0);
  if (op == "in") return Value(contains(b, a));
  if (op == "not in") return Value(!contains(b, a));
  if (op == "~") return concat_strings(a.to_str(), b.to_str());
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      if (!a.is_safe() && !b.is_safe()) return concat_strings(a.str(), b.str());
      // Markup + str (or str + Markup) escapes the plain side and stays Markup.
      return Value::markup(concat_strings(escape_value(a).str(), escape_value(b).str()).str());
    }
    if (a.is_list() && b.is_list()) {
      check_memory((a.list().size() + b.list().size()) * sizeof(Value));
      List l;
      l.reserve(a.list().size() + b.list().size());
      l.insert(l.end(), a.list().begin(), a.list().end());
      l.insert(l.end(), b.list().begin(), b.list().end());
      return Value(std::move(l));
    }
  }
  if (op == "*") {
    const bool ai = a.kind() == Value::Kind::Int || a.kind() == Value::Kind::Bool;
    const bool bi = b.kind() == Value::Kind::Int || b.kind() == Value::Kind::Bool;
    const Value* text = a.is_string() && bi ? &a : ai && b.is_string() ? &b : nullptr;
    if (text) {
      Value r = repeat_string(text->str(), (text == &a ? b : a).as_int());
      return text->is_safe() ? Value::markup(r.str()) : r;
    }
    if (a.is_list() && bi) return repeat_list(a.list(), b.as_int());
    if (ai && b.is_list()) return repeat_list(b.list(), a.as_int());
  }
  if (op == "%" && a.is_string()) return py_format(a, b);
  if (!is_numeric(a) || !is_numeric(b))
    throw TemplateError("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
  const bool ints = a.kind() != Value::Kind::Float && b.kind() != Value::Kind::Float;
  const double x = a.as_double(), y = b.as_double();
  if ((op == "/" || op == "//" || op == "%") && y == 0) throw TemplateError("division by zero");
  if (ints) {
    const int64_t i = a.as_int(), j = b.as_int();
    int64_t r;
    if (op == "+") return Value(checked_add(i, j));
    if (op == "-") {
      if (__builtin_sub_overflow(i, j, &r)) overflow(i, "-", j);
      return Value(r);
    }
    if (op == "*") return Value(checked_mul(i, j));
    if (op == "//") return Value(floor_div(i, j));
    if (op == "%") return Value(py_mod(i, j));
    if (op == "**" && j >= 0) return Value(checked_pow(i, j));
  }
  if (op == "+") return Value(x + y);
  if (op == "-") return Value(x - y);
  if (op == "*") return Value(x * y);
  if (op == "/") return Value(x / y);
  if (op == "//") return Value(std::floor(x / y));
  if (op == "%") {
    double r = std::fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return Value(r);
  }
  if (op == "**") {
    if (x == 0 && y < 0) throw TemplateError("0.0 cannot be raised to a negative power");
    return Value(std::pow(x, y));
  }
  throw TemplateError("unknown operator " + op);
}

}  // namespace camelid::jinja
