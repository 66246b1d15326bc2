#pragma once
// Tokenizer file formats -> TokenizerSpec. Each throws camelid::Error naming the file and the
// field on anything it cannot represent. The parse_* forms read bytes already in memory
// (`source` names them in messages; fuzz targets use them); the load_* forms read the file;
// the *_from_gguf forms read the tokenizer.* metadata of a GGUF file already parsed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace camelid {

namespace gguf {
class File;
}

TokenizerSpec load_tokenizer_json(const std::string& path);        // Hugging Face tokenizers
TokenizerSpec parse_tokenizer_json(std::string_view text, const std::string& source);
TokenizerSpec load_sentencepiece_model(const std::string& path);   // SentencePiece protobuf
TokenizerSpec parse_sentencepiece_model(const uint8_t* data, size_t size, const std::string& source);

// llama.cpp's tokenizer.ggml.* keys: model "llama" (SentencePiece BPE ranked by scores) or "gpt2"
// (byte-level BPE with merges; tokenizer.ggml.pre picks the pre-tokenizer: "llama-bpe" and its
// aliases "llama3"/"llama-v3", or "default"/"gpt-2"). eot/eom ids go to more_eos_ids.
TokenizerSpec tokenizer_spec_from_gguf(const gguf::File& f);
// tokenizer.ggml.eos_token_id, eot_token_id, eom_token_id: those present, range-checked against
// tokenizer.ggml.tokens, no duplicates, in that order (for a model config's eos ids).
std::vector<int> end_of_turn_ids_from_gguf(const gguf::File& f);
// tokenizer.chat_template, or "" when the file has none.
std::string chat_template_from_gguf(const gguf::File& f);

}  // namespace camelid
