#pragma once
// Values of the Jinja template language with Python's semantics where templates rely on them:
// truthiness, equality (1 == 1.0), str() of lists and dicts, json.dumps for tojson.
//
// Sandboxed (see jinja_sandbox.h): strings, lists and dicts count their bytes against the render
// that built them; lists and dicts change only through append()/set(), which refuse to create a
// cycle (so printing, comparing or dumping a value always ends); walking a value is depth-limited;
// and destroying one is iterative, so even a list nested a million deep cannot overflow the stack.
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_sandbox.h"

namespace camelid::jinja {

class Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion-ordered, as Python dicts
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  const Value* get(size_t i, const char* name) const;  // positional i or keyword name; null if absent
  static constexpr size_t kKeywordOnly = SIZE_MAX;     // as i: the keyword only
};
using Function = std::function<Value(Args&)>;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Function };

  Value() = default;  // undefined
  static Value none() { Value v; v.kind_ = Kind::None; return v; }
  Value(bool b) : kind_(Kind::Bool), i_(b) {}
  Value(int i) : kind_(Kind::Int), i_(i) {}
  Value(int64_t i) : kind_(Kind::Int), i_(i) {}
  Value(double d) : kind_(Kind::Float), d_(d) {}
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}
  Value(List l);
  Value(Dict d);  // keys must be distinct (the caller's job: see dict literals in jinja_eval.cpp)
  Value(Function f) : kind_(Kind::Function), f_(std::make_shared<Function>(std::move(f))) {}
  static Value from_json(const nlohmann::ordered_json& j);  // keeps key order, as Python dicts

  Value(const Value&) = default;
  Value(Value&&) noexcept = default;
  Value& operator=(const Value&) = default;
  Value& operator=(Value&&) noexcept = default;
  ~Value() {
    if (l_ || m_) release_containers();
  }

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_callable() const { return kind_ == Kind::Function; }
  bool is_namespace() const { return kind_ == Kind::Dict && ns_; }
  void mark_namespace() { ns_ = true; }
  // jinja2's Markup (|safe, |escape): a string that is already HTML. Adding a plain string to it
  // (either side) escapes that string, as Markup.__add__/__radd__ do; most str methods keep it.
  static Value markup(std::string s) { Value v(std::move(s)); v.ns_ = true; return v; }
  bool is_safe() const { return kind_ == Kind::String && ns_; }
  // A Python tuple ((a, b), dict items, dictsort pairs): a list that prints with parentheses.
  static Value tuple(List l) { Value v(std::move(l)); v.ns_ = true; return v; }
  bool is_tuple() const { return kind_ == Kind::List && ns_; }

  bool as_bool() const { return i_ != 0; }
  int64_t as_int() const;  // int, float or bool; throws TemplateError for a float outside int64 (or NaN)
  double as_double() const;
  const std::string& str() const;
  // Read access, and in-place changes that neither grow the container nor insert values (pop).
  List& list() const;
  const Dict& dict() const;
  const Function& function() const { return *f_; }

  bool truthy() const;
  // A dict entry, or undefined.
  Value get(const std::string& key) const;
  // Adds or replaces a dict entry (dicts and namespaces are shared, so visible to all holders).
  // Throws TemplateError if v contains this dict (a cycle).
  void set(const std::string& key, Value v) const;
  void append(Value v) const;  // list.append; throws TemplateError if v contains this list

  std::string to_str() const;   // Python str(): what {{ x }} prints
  std::string repr() const;     // Python repr(): how x appears inside a printed list or dict
  std::string to_json(int64_t indent = -1, bool sort_keys = false) const;  // Python json.dumps(ensure_ascii=False)
  // json.dumps with all of its formatting arguments (transformers' tojson filter passes them on).
  struct JsonStyle {
    bool pretty = false;       // indent given: a newline and `indent` repeated per level
    std::string indent;
    std::string item_sep = ", ", key_sep = ": ";  // Python's defaults: "," between items when pretty
    bool sort_keys = false, ensure_ascii = false;
  };
  std::string to_json(const JsonStyle& style) const;
  const char* type_name() const;

 private:
  struct StrBox;
  struct ListBox;
  struct DictBox;
  void release_containers() noexcept;
  void mark_contained() const;
  bool contains_box(const void* box) const;

  Kind kind_ = Kind::Undefined;
  bool ns_ = false;  // Dict: a namespace(); String: Markup; List: a tuple
  int64_t i_ = 0;
  double d_ = 0;
  std::shared_ptr<const StrBox> s_;
  std::shared_ptr<ListBox> l_;
  std::shared_ptr<DictBox> m_;
  std::shared_ptr<Function> f_;
};

struct Value::StrBox {
  std::string s;
  Charge charge;
};
// `contained`: the box was once put inside another list or dict. A list or dict never contained
// cannot be inside the value being inserted into it, so append()/set() skip the cycle search.
struct Value::ListBox {
  List items;
  Charge charge;
  bool contained = false;
};
struct Value::DictBox {
  Dict items;
  Charge charge;
  bool contained = false;
};
inline const std::string& Value::str() const { return s_->s; }
inline List& Value::list() const { return l_->items; }
inline const Dict& Value::dict() const { return m_->items; }

bool equal(const Value& a, const Value& b);           // Python ==
int compare(const Value& a, const Value& b);          // <0, 0, >0; throws TemplateError if unordered
std::string format_float(double d);                   // Python repr of a float

}  // namespace camelid::jinja
