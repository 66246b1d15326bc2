#pragma once
// GBNF grammars (the notation llama.cpp's users write) parsed and lowered to a flat form the
// matcher walks: each rule is a list of alternatives, each alternative a sequence of elements
// (a character class or a reference to a rule) ended by End. Repetitions (* + ? {m,n}) and
// groups become generated rules. Grammar text may come from strangers: its size, nesting, rule
// count, repetition bounds and lowered size are limited, and errors name line:column.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace camelid::grammar {

struct CharClass {
  bool negated = false;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive code point ranges
  bool contains(uint32_t cp) const;
  bool intersects(uint32_t lo, uint32_t hi) const;  // any code point of [lo, hi] in the class
};

enum class ElemType : uint8_t { End, Char, Ref };

struct Elem {
  ElemType type;
  uint32_t value;  // Char: index into classes; Ref: rule index
};

struct Grammar {
  std::vector<std::string> rule_names;        // generated rules are named "<rule>-<n>"
  std::vector<std::vector<uint32_t>> alts;    // per rule: offsets in elems where alternatives start
  std::vector<Elem> elems;
  std::vector<CharClass> classes;
  uint32_t root = 0;
};

struct GrammarLimits {
  size_t max_bytes = 1 << 20;     // grammar text
  int max_depth = 64;             // nested groups
  size_t max_rules = 20000;       // named + generated
  size_t max_elems = 1 << 20;     // lowered size (repetitions expand)
  uint32_t max_repeat = 10000;    // m and n of {m,n}
};

// Throws Error("grammar: line L, column C: ...") for a syntax error, and Error("grammar: ...")
// for a missing root, an undefined rule, a left-recursive rule (the matcher would loop) or an
// exceeded limit.
Grammar parse_grammar(std::string_view text, const GrammarLimits& lim = {});

}  // namespace camelid::grammar
