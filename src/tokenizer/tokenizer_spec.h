#pragma once
// What a tokenizer file says, in one form whatever the source (tokenizer.json, a SentencePiece
// tokenizer.model, GGUF metadata). The loaders fill it; Tokenizer runs it.
#include <string>
#include <utility>
#include <vector>

namespace camelid {

enum class TokenType { Normal, Unknown, Control, UserDefined, Byte, Unused };

struct AddedToken {
  int id = -1;
  std::string content;
  bool special = true;         // matched in text only when special parsing is on
  bool lstrip = false, rstrip = false;  // absorb whitespace on that side
};

struct TokenizerSpec {
  enum class Kind {
    SentencePieceBpe,  // Llama 2 / Code Llama: "▁" for spaces, merges over characters, byte fallback
    ByteLevelBpe,      // Llama 3: regex pre-tokenizer, GPT-2 byte<->unicode map, merges over bytes
  };
  enum class Prefix { Always, First, Never };  // where "▁" is prepended (per text segment)

  Kind kind = Kind::SentencePieceBpe;
  std::string source;  // file it came from, for error messages

  std::vector<std::string> tokens;  // as stored in the vocabulary
  std::vector<TokenType> types;
  // Merge priority: either ranked pairs of token ids (tokenizer.json merges), or, when empty,
  // piece scores (SentencePiece: the pair whose merged piece scores highest goes first).
  std::vector<std::pair<int, int>> merges;
  std::vector<float> scores;
  bool ranked_merges = false;  // merges are the priority even when empty (tokenizer.json), not scores

  // SentencePiece-style text handling.
  Prefix dummy_prefix = Prefix::Always;
  bool escape_spaces = true;  // " " -> "▁"
  bool byte_fallback = true;
  bool fuse_unk = false;
  int unk_id = -1;
  int bos_id = -1, eos_id = -1;  // the tokenizer's own notion; a model config may add more eos ids
  std::vector<int> more_eos_ids;  // other ids that end generation (GGUF's eot/eom), after eos_id
  // Fill-in-the-middle tokens named by the file (GGUF tokenizer.ggml.prefix/suffix/middle_token_id,
  // or fim_pre/fim_suf/fim_mid; eot_token_id); -1 when it names none.
  int fim_prefix_id = -1, fim_suffix_id = -1, fim_middle_id = -1, fim_eot_id = -1;

  // Byte-level handling: the pre-tokenizer's regex patterns ("Isolated" splits, applied in turn).
  std::vector<std::string> split_patterns;
  bool ignore_merges = false;  // a pre-token that is a whole vocabulary entry is used as is

  // Special tokens around an encoded text (from the post-processor or tokenizer_config.json).
  std::vector<int> prefix_ids, suffix_ids;
  bool strip_leading_space = true;  // decoder drops the space the dummy prefix added

  std::vector<AddedToken> added;
};

}  // namespace camelid
