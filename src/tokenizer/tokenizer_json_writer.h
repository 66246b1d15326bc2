#pragma once
// A trained tokenizer (bpe_trainer.h) as Hugging Face files: tokenizer.json (a BPE model with
// vocab and merges in the "left right" string form, and the pipeline of Llama 2's or Llama 3's
// own tokenizer.json) and tokenizer_config.json (special tokens, BOS, a chat template).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "tokenizer/bpe_trainer.h"

namespace camelid {

struct TokenizerFileOptions {
  int64_t model_max_length = 4096;
};

nlohmann::ordered_json tokenizer_json(const TrainedTokenizer& t);
nlohmann::ordered_json tokenizer_config_json(const TrainedTokenizer& t, const TokenizerFileOptions& o = {});

// Writes DIR/tokenizer.json and DIR/tokenizer_config.json (creating DIR), each through a
// temporary file renamed into place. Error naming the path on failure.
void write_tokenizer_files(const TrainedTokenizer& t, const std::string& dir, const TokenizerFileOptions& o = {});

}  // namespace camelid
