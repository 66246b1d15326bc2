#pragma once
// tokenizer_config.json: the fields camelid reads from it. The tokenizer takes BOS/EOS and the
// added tokens from it, the chat template its template and special-token texts. Every field
// read is type-checked: a wrong type is an error naming the file and the field, never ignored.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace camelid {

struct TokenizerConfig {
  std::string source;         // the file, for messages
  // "" when absent or null. Of a list of named templates ([{"name", "template"}, ...]) the one
  // named "default"; a non-empty list without one is an error (as in transformers).
  std::string chat_template;
  std::string bos_token, eos_token;  // token texts (a string or {"content": ...}), "" when absent or null
  std::optional<bool> add_bos_token, add_eos_token;
  // added_tokens_decoder ({"<id>": {"content", "special", "lstrip", "rstrip"}}), ascending ids.
  std::vector<AddedToken> added_tokens;
};

// Throws Error naming the file when it cannot be read, is not a JSON object, or a field read
// has the wrong type or an id out of range.
TokenizerConfig read_tokenizer_config(const std::string& path);
TokenizerConfig parse_tokenizer_config(std::string_view text, const std::string& source);

// Checks the config's added tokens against the vocabulary: an id inside it must name the same
// text; ids just past it add new tokens (as transformers does for a tokenizer.model); any other
// id is an error. Used by Tokenizer before it indexes the vocabulary.
void add_config_tokens(TokenizerSpec& spec, const TokenizerConfig& cfg);

}  // namespace camelid
