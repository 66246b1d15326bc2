#pragma once
// Jinja template source -> segments (text, {{ }} and {% %} tags) -> tokens inside each tag.
// split_source applies whitespace control ({%- -%}, {{- -}}, {#- -#}, {%+ +%}) and the settings
// transformers renders chat templates with: trim_blocks and lstrip_blocks. Tags are delimited
// the way jinja2's lexer does it: a "}}" or "%}" inside a string literal or inside open brackets
// does not end the tag.
#include <cstdint>
#include <string>
#include <vector>

namespace camelid::jinja {

struct Segment {
  enum Kind { Text, Var, Block } kind;
  std::string text;  // the text, or a tag's inside (without delimiters and -/+ markers)
  int line;          // 1-based line where the segment starts
};

struct Token {
  enum Kind { Name, String, Int, Float, Op, End } kind;
  std::string text;  // Name/Op text, String value (escapes decoded), Int/Float source text
  int64_t i = 0;
  double d = 0;
};

// Both throw TemplateError("template syntax error (line N): ...") on malformed input.
std::vector<Segment> split_source(const std::string& src);
std::vector<Token> lex(const std::string& tag_inside, int line);

[[noreturn]] void syntax_error(int line, const std::string& msg);

}  // namespace camelid::jinja
