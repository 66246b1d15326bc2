#pragma once
// JSON Schema's `pattern` (an ECMA-262 regular expression) -> a GBNF expression for the JSON
// string literals, quotes included, whose value the pattern matches. As in JSON Schema the
// pattern searches the value: without a leading ^ (trailing $) any text may come before (after)
// what it matches. The literal is written in its canonical JSON form (\" \\ \n \t \r \b \f, other
// control characters as \u00XX), so every string the grammar accepts decodes to one the pattern
// matches. Supported: literals and escapes (\d \w \s \D \W \S \t \n \r \v \f \0 \cX \xHH \uHHHH,
// escaped punctuation), `.`, classes with ranges and negation, groups ((...), (?:...),
// (?<name>...)), alternation, greedy and lazy quantifiers (* + ? {n} {n,} {n,m}, counts up to
// 1000), ^ at the start and $ at the end of a top-level alternative. Back-references,
// lookaround, \b, \p{...} and anchors anywhere else are an Error naming the offset: what the
// grammar cannot enforce is refused, never ignored.
#include <string>
#include <string_view>

namespace camelid {

// Needs the rule `json-char` (one JSON string character, escapes included) of
// json_primitive_rules() for the text an unanchored pattern lets through.
std::string regex_to_json_string_gbnf(std::string_view pattern);

}  // namespace camelid
