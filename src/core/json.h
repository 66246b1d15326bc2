#pragma once
// JSON read from untrusted bytes (model files, tokenizer files, HTTP bodies) and JSON written for
// strangers. nlohmann's parser is iterative, but what we then do with a value (destroy it, dump
// it, convert it for the chat template) recurses; so every parse goes through a depth limit. A key
// repeated within one object is rejected, as the reference safetensors and tokenizers libraries
// do: silently keeping one of the two would hide a corrupt or tampered file.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace camelid {

struct JsonLimits {
  int max_depth = 128;                // nested arrays/objects
  bool reject_duplicate_keys = true;
};

// Parses `text` as one JSON value. Throws Error("<what>: <plain reason>") on malformed JSON
// (with line/column, never the offending raw bytes), on nesting deeper than max_depth, and on
// a duplicate key.
nlohmann::json parse_json(std::string_view text, const std::string& what, const JsonLimits& lim = {});
nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& what, const JsonLimits& lim = {});

// dump() that never throws: invalid UTF-8 (a model's partial token, a hostile path) becomes U+FFFD.
std::string dump_json(const nlohmann::json& j, int indent = -1);
std::string dump_json(const nlohmann::ordered_json& j, int indent = -1);

}  // namespace camelid
