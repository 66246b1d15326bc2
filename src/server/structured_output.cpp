#include "server/structured_output.h"

#include "core/error.h"
#include "runtime/json_schema_grammar.h"
#include "server/openai_api.h"
#include "tokenizer/tokenizer.h"

namespace camelid {

std::shared_ptr<const TokenVocab> grammar_vocab(const Tokenizer& tok, const std::vector<int>& also_allowed) {
  const int n = tok.vocab_size();
  std::vector<std::string> bytes{size_t(n)};
  std::vector<char> excluded(size_t(n), 0);
  for (int i = 0; i < n; ++i) {
    bytes[size_t(i)] = tok.token_bytes(i);
    excluded[size_t(i)] = tok.is_special(i);
  }
  for (int id : also_allowed)
    if (id >= 0 && id < n) excluded[size_t(id)] = 0;
  return std::make_shared<const TokenVocab>(std::move(bytes), excluded);
}

std::shared_ptr<const grammar::Grammar> grammar_from_gbnf(std::string_view text) {
  return std::make_shared<const grammar::Grammar>(grammar::parse_grammar(text));
}

std::shared_ptr<const grammar::Grammar> grammar_from_schema(const nlohmann::ordered_json& schema) {
  return grammar_from_gbnf(json_schema_to_grammar(schema));
}

std::shared_ptr<const grammar::Grammar> grammar_from_schema_text(std::string_view schema_text) {
  return grammar_from_gbnf(json_schema_text_to_grammar(schema_text));
}

namespace api {

std::shared_ptr<const grammar::Grammar> parse_structured_output(const nlohmann::ordered_json& j) {
  std::shared_ptr<const grammar::Grammar> g;
  if (auto gr = j.find("grammar"); gr != j.end() && !gr->is_null()) {
    if (!gr->is_string()) bad_request("grammar", "'grammar' must be a string (GBNF)");
    try {
      g = grammar_from_gbnf(gr->get<std::string>());
    } catch (const Error& e) {
      bad_request("grammar", std::string("'grammar': ") + e.what());
    }
  }
  auto rf = j.find("response_format");
  if (rf == j.end() || rf->is_null()) return g;
  if (!rf->is_object() || !rf->contains("type") || !(*rf)["type"].is_string())
    bad_request("response_format", "'response_format' must be an object with a 'type'");
  const std::string type = (*rf)["type"];
  if (type == "text") return g;
  if (g) bad_request("response_format", "give either 'grammar' or a JSON 'response_format', not both");
  try {
    if (type == "json_object") return grammar_from_gbnf(json_object_grammar());
    if (type != "json_schema")
      bad_request("response_format.type", "'response_format.type' must be 'text', 'json_object' or 'json_schema'");
    auto js = rf->find("json_schema");
    if (js == rf->end() || !js->is_object())
      bad_request("response_format.json_schema", "'response_format.json_schema' must be an object");
    auto schema = js->find("schema");
    if (schema == js->end() || schema->is_null()) return grammar_from_gbnf(json_object_grammar());  // no schema: any object
    return grammar_from_schema(*schema);
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    bad_request("response_format.json_schema.schema", std::string("'response_format.json_schema.schema': ") + e.what());
  }
  return nullptr;
}

}  // namespace api
}  // namespace camelid
