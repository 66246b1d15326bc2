#pragma once
// Structured output for the front ends: the request fields `response_format` (OpenAI) and
// `grammar` (llama-server's GBNF field) turned into a parsed grammar, and the vocabulary's trie
// the token masks walk (built once per tokenizer).
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/grammar_parse.h"
#include "runtime/token_mask.h"

namespace camelid {

class Tokenizer;

// Every token's bytes; special tokens are left out (only the end tokens given to a constraint
// may finish a constrained output).
// also_allowed: special tokens a grammar may still produce (by their text), e.g. <tool_call>.
std::shared_ptr<const TokenVocab> grammar_vocab(const Tokenizer& tok, const std::vector<int>& also_allowed = {});

std::shared_ptr<const grammar::Grammar> grammar_from_gbnf(std::string_view text);
// JSON Schema text or value -> grammar (Error "json_schema: ..." for what cannot be enforced).
std::shared_ptr<const grammar::Grammar> grammar_from_schema(const nlohmann::ordered_json& schema);
std::shared_ptr<const grammar::Grammar> grammar_from_schema_text(std::string_view schema_text);

namespace api {
// The grammar a completion request asks for through `response_format` or `grammar` (nullptr for
// none); throws ApiError(400) naming the field.
std::shared_ptr<const grammar::Grammar> parse_structured_output(const nlohmann::ordered_json& body);
}  // namespace api

}  // namespace camelid
