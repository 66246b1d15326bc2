#pragma once
// Pieces of GBNF grammar text, for the code that writes grammars (JSON schemas, patterns, numeric
// ranges, tool calls).
#include <string>
#include <vector>

namespace camelid {

// A GBNF string literal matching exactly `text`.
std::string gbnf_literal(const std::string& text);
// "( a | b | ... )", or the one alternative as it is (alts must not be empty).
std::string gbnf_one_of(const std::vector<std::string>& alts);

}  // namespace camelid
