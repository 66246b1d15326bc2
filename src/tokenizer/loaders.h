#pragma once
// Tokenizer file formats -> TokenizerSpec. Each throws camelid::Error naming the file and the
// field on anything it cannot represent.
#include <string>

#include "tokenizer/tokenizer_spec.h"

namespace camelid {

TokenizerSpec load_tokenizer_json(const std::string& path);        // Hugging Face tokenizers
TokenizerSpec load_sentencepiece_model(const std::string& path);   // SentencePiece protobuf

}  // namespace camelid
