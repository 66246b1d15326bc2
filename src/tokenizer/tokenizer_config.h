#pragma once
// tokenizer_config.json: the fields camelid reads from it. The tokenizer takes BOS/EOS from it,
// the chat template its template and special-token texts.
#include <optional>
#include <string>

namespace camelid {

struct TokenizerConfig {
  std::string chat_template;         // "" when absent; of a list of named templates, "default"
  std::string bos_token, eos_token;  // token texts (plain or {"content": ...}), "" when absent
  std::optional<bool> add_bos_token, add_eos_token;
};

// Throws Error naming the file when it cannot be read or is not a JSON object.
TokenizerConfig read_tokenizer_config(const std::string& path);

}  // namespace camelid
