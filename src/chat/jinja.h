#pragma once
// A Jinja2 interpreter for the chat templates shipped in tokenizer_config.json. It implements the
// subset real Llama templates use (see tests/test_jinja.cpp), configured as transformers renders
// them: trim_blocks and lstrip_blocks on, loop controls, no autoescaping, and the extra globals
// raise_exception() and strftime_now(). Templates are untrusted: parsing and rendering run in a
// sandbox (jinja_sandbox.h) and fail with TemplateError/LimitError, never crash or hang.
#include <memory>
#include <string>

#include "chat/jinja_ast.h"
#include "chat/jinja_value.h"

namespace camelid::jinja {

// raise_exception("msg") in a template: what() is exactly "msg".
class RaisedError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

// What one render used, against its Limits.
struct RenderStats {
  int64_t steps = 0;
  size_t peak_bytes = 0;
};

class Template {
 public:
  // Throws TemplateError on a syntax error (LimitError for a source too large or too deeply
  // nested); nothing else.
  explicit Template(const std::string& source);
  // Renders with these variables (plus the built-in globals). Throws RaisedError for
  // raise_exception(), LimitError (with the line) when the render passes a limit, TemplateError
  // (with the line) for other errors in the template; nothing else. Thread-safe: a Template is
  // immutable, each render has its own state and budget.
  std::string render(const Dict& vars, const Limits& limits = {}, RenderStats* stats = nullptr) const;

 private:
  std::shared_ptr<const Body> body_;
};

// Built-ins, in jinja_builtins.cpp. Each throws TemplateError on misuse.
Value apply_filter(const std::string& name, const Value& v, Args& args);
bool apply_test(const std::string& name, const Value& v, Args& args);
bool call_method(const Value& obj, const std::string& name, Args& args, Value* result);  // false: no such method
Value builtin_global(const std::string& name);  // range, namespace, dict, raise_exception, strftime_now; undefined if none
Value subscript(const Value& obj, const Value& key);                                    // obj[key] or undefined
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);  // obj[start:stop:step]
bool contains(const Value& container, const Value& item);                              // item in container
List iterate(const Value& v);  // the items a for loop visits (dict: keys, string: characters)

// Operators, in jinja_arith.cpp: Python's results, with int64 arithmetic where every overflow
// is a LimitError (Python has big ints; wrapping around would print wrong numbers).
Value binary_op(const std::string& op, const Value& a, const Value& b);  // op: + - * / // % ** ~ == != < > <= >= in, not in
Value negate(const Value& v);                                            // unary minus
int64_t checked_abs(int64_t i);
int64_t checked_add(int64_t a, int64_t b);
int64_t py_mod(int64_t a, int64_t b);  // Python's a % b (sign of b); b != 0

}  // namespace camelid::jinja
