#pragma once
// The inverse of tokenizer_spec_from_gguf: a Hugging Face model directory's tokenizer as the
// tokenizer.* metadata llama.cpp's convert_hf_to_gguf.py writes for a Llama model (build c392e50,
// Feb 2025), key by key and in its order, so that llama.cpp and camelid read the file unchanged.
#include <cstdint>
#include <string>

#include "core/gguf.h"

namespace camelid {

// Whether `dir` has a tokenizer the converter can write (tokenizer.model or tokenizer.json).
bool has_tokenizer_files(const std::string& dir);

// tokenizer.model (SentencePiece) -> model "llama" with tokens, scores and token types; a
// byte-level tokenizer.json (Llama 3) -> model "gpt2", tokenizer.ggml.pre and merges. Then, as
// gguf-py's SpecialVocab: bos/eos/unk/sep/pad/cls/mask ids (from tokenizer_config.json's token
// texts, else config.json's *_token_id), add_bos_token/add_eos_token, and the chat template.
// vocab_size is config.json's: the vocabulary is padded to it with unused [PADn] tokens. First
// comes tokenizer.ggml.add_space_prefix when tokenizer_config.json has add_prefix_space (the
// converter writes it with the hyperparameters, just before the tokenizer). Throws Error naming
// the file and field for a tokenizer it cannot represent (e.g. a SentencePiece vocabulary given
// only as tokenizer.json, or a pre-tokenizer other than Llama 3's or GPT-2's).
gguf::KeyValues tokenizer_gguf_metadata(const std::string& dir, int64_t vocab_size);

}  // namespace camelid
