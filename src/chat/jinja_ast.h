#pragma once
// The parsed form of a Jinja template: statements and expressions as plain tree nodes.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"

namespace camelid::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Expr {
  enum class Kind { Literal, Name, Attr, Item, Slice, Call, Filter, Test, Unary, Binary, Cond, List, Dict };
  Kind kind;
  int line = 0;
  int depth = 1;               // of the tree below (bounded by kMaxParseDepth, so evaluation is too)
  Value value;                 // Literal
  std::string name;            // Name, Attr, Filter, Test; operator of Unary/Binary
  bool negated = false;        // Test: "is not"
  bool tuple = false;          // List: written as a tuple, (a, b)
  // Attr/Item/Slice/Call/Filter/Test: args[0] is the object; Slice: start, stop, step (may be null);
  // Unary: operand; Binary: lhs, rhs; Cond: then, condition, else (may be null); List: elements;
  // Dict: key, value, key, value, ...
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // Call/Filter/Test
};

struct Stmt {
  enum class Kind { Text, Output, If, For, Set, SetBlock, Macro, Break, Continue, Scope, FilterBlock, CallBlock };
  Kind kind;
  int line = 0;
  std::string text;                      // Text; Macro name
  ExprPtr expr;                          // Output; Set value; For iterable
  std::vector<std::string> targets;      // For/Set names; Set with attr: {object, attribute}
  bool set_attr = false;
  ExprPtr filter;                        // For: "if" clause
  std::vector<std::pair<ExprPtr, Body>> branches;  // If: condition (null for else) and body
  Body body, else_body;                  // For/SetBlock/Macro/Scope
  std::vector<std::pair<std::string, ExprPtr>> params;  // Macro, CallBlock (the caller's): name and default (may be null)
  // Macro/CallBlock: whether the body reads varargs, kwargs, caller (jinja2 then accepts extra
  // positional or keyword arguments; otherwise they are an error).
  bool uses_varargs = false, uses_kwargs = false, uses_caller = false;
  // FilterBlock: the filters, each a Filter node without its object (args[0] null); CallBlock:
  // expr is the call the body is passed to as caller().
  std::vector<ExprPtr> filters;
};

// Throws TemplateError with the line number on a syntax error, and for a source longer than
// kMaxSourceBytes or nested deeper than kMaxParseDepth (statements and expressions together).
Body parse_template(const std::string& source);

}  // namespace camelid::jinja
