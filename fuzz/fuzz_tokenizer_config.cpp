// tokenizer_config.json text from a stranger, applied to small tokenizers of both file kinds
// (a tokenizer.json and a tokenizer.model): wrong types, hostile added_tokens_decoder ids, named
// chat templates. Any input must end in a tokenizer or a camelid::Error.
// seeds: tokenizers/llama2/tokenizer_config.json tokenizers/llama3/tokenizer_config.json models/tiny-llama2/tokenizer_config.json models/tiny-llama3/tokenizer_config.json
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer_config.h"
#include "tokenizer_exercise.h"
#include "tokenizer_test_files.h"

namespace {

const camelid::TokenizerSpec& json_spec() {
  static const camelid::TokenizerSpec s = camelid::parse_tokenizer_json(camelid::test::tiny_sp_json().dump(), "fuzz/tokenizer.json");
  return s;
}
const camelid::TokenizerSpec& model_spec() {
  static const std::string bytes = camelid::test::sp_model(camelid::test::tiny_sp_pieces());
  static const camelid::TokenizerSpec s =
      camelid::parse_sentencepiece_model(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "fuzz/tokenizer.model");
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  camelid::TokenizerConfig cfg;
  try {
    cfg = camelid::parse_tokenizer_config(text, "fuzz/tokenizer_config.json");
  } catch (const camelid::Error&) {
    return 0;
  }
  for (const camelid::TokenizerSpec* spec : {&json_spec(), &model_spec()}) {
    try {
      const camelid::Tokenizer tok(*spec, cfg);
      camelid::fuzz::exercise(tok, cfg.chat_template);
    } catch (const camelid::Error&) {
    }
  }
  return 0;
}
