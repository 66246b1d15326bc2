#pragma once
// Tokenizer file formats -> TokenizerSpec. Each throws camelid::Error naming the file and the
// field on anything it cannot represent. The parse_* forms read bytes already in memory
// (`source` names them in messages; fuzz targets use them); the load_* forms read the file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer_spec.h"

namespace camelid {

TokenizerSpec load_tokenizer_json(const std::string& path);        // Hugging Face tokenizers
TokenizerSpec parse_tokenizer_json(std::string_view text, const std::string& source);
TokenizerSpec load_sentencepiece_model(const std::string& path);   // SentencePiece protobuf
TokenizerSpec parse_sentencepiece_model(const uint8_t* data, size_t size, const std::string& source);

}  // namespace camelid
