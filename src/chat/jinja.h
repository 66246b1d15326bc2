#pragma once
// A Jinja2 interpreter for the chat templates shipped in tokenizer_config.json. It implements the
// subset real Llama templates use (see tests/test_jinja.cpp), configured as transformers renders
// them: trim_blocks and lstrip_blocks on, loop controls, no autoescaping, and the extra globals
// raise_exception() and strftime_now().
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

class Template {
 public:
  explicit Template(const std::string& source);  // throws TemplateError on a syntax error
  // Renders with these variables (plus the built-in globals). Throws RaisedError for
  // raise_exception(), TemplateError (with the line) for other errors in the template.
  std::string render(const Dict& vars) const;

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

}  // namespace camelid::jinja
