#pragma once
// Values of the Jinja template language with Python's semantics where templates rely on them:
// truthiness, equality (1 == 1.0), str() of lists and dicts, json.dumps for tojson.
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace camelid::jinja {

// raise_exception() in a template, and other errors of the template itself (bad syntax, unknown
// filter, wrong types). what() is the message alone, as the template wrote it.
class TemplateError : public Error {
 public:
  using Error::Error;
};

class Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion-ordered, as Python dicts
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  const Value* get(size_t i, const char* name) const;  // positional i or keyword name; null if absent
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
  Value(std::string s) : kind_(Kind::String), s_(std::make_shared<std::string>(std::move(s))) {}
  Value(const char* s) : Value(std::string(s)) {}
  Value(List l) : kind_(Kind::List), l_(std::make_shared<List>(std::move(l))) {}
  Value(Dict d) : kind_(Kind::Dict), m_(std::make_shared<Dict>(std::move(d))) {}
  Value(Function f) : kind_(Kind::Function), f_(std::make_shared<Function>(std::move(f))) {}
  static Value from_json(const nlohmann::ordered_json& j);  // keeps key order, as Python dicts

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

  bool as_bool() const { return i_ != 0; }
  int64_t as_int() const;  // int, float or bool
  double as_double() const;
  const std::string& str() const { return *s_; }
  List& list() const { return *l_; }
  Dict& dict() const { return *m_; }
  const Function& function() const { return *f_; }

  bool truthy() const;
  // A dict entry, or undefined.
  Value get(const std::string& key) const;
  void set(const std::string& key, Value v) const;  // dicts and namespaces (shared, so visible to all holders)

  std::string to_str() const;   // Python str(): what {{ x }} prints
  std::string repr() const;     // Python repr(): how x appears inside a printed list or dict
  std::string to_json(int indent = -1, bool sort_keys = false) const;  // Python json.dumps(ensure_ascii=False)
  const char* type_name() const;

 private:
  Kind kind_ = Kind::Undefined;
  bool ns_ = false;
  int64_t i_ = 0;
  double d_ = 0;
  std::shared_ptr<std::string> s_;
  std::shared_ptr<List> l_;
  std::shared_ptr<Dict> m_;
  std::shared_ptr<Function> f_;
};

bool equal(const Value& a, const Value& b);           // Python ==
int compare(const Value& a, const Value& b);          // <0, 0, >0; throws TemplateError if unordered
std::string format_float(double d);                   // Python repr of a float

}  // namespace camelid::jinja
