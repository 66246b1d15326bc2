#pragma once
// Fill-in-the-middle (code infill) prompts: the code before and after a gap -> the prompt tokens
// after which the model writes the middle. Shared by `camelid infill` and a server /infill.
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace camelid {

struct FimTokens {
  int prefix = -1, suffix = -1, middle = -1;
  int eot = -1;  // ends the middle (Code Llama's ▁<EOT>); -1: the model's usual end tokens
  // Code Llama's SentencePiece layout ("<PRE> {prefix} <SUF>{suffix} <MID>": the prefix with the
  // usual leading space, the suffix without) or the plain one ("<|fim_prefix|>{prefix}...").
  bool code_llama = false;
  bool found() const { return prefix >= 0 && suffix >= 0 && middle >= 0; }
};

// The tokenizer's FIM tokens: those its file names (GGUF tokenizer.ggml.prefix_token_id, ...),
// else by text: Code Llama's ▁<PRE> ▁<SUF> ▁<MID> ▁<EOT>, then <|fim_prefix|> <|fim_suffix|>
// <|fim_middle|> (with <|fim_pad|>/<|endoftext|> not used), then <fim_prefix> <fim_suffix> <fim_middle>.
FimTokens find_fim_tokens(const Tokenizer& tok);

// Other files given as context (llama-server's /infill `input_extra`).
struct InfillFile {
  std::string filename, text;
};

// BOS (when the tokenizer adds one), [extra files], PRE, prefix, SUF, suffix, MID; prefix, suffix
// and the files are plain text (a special token's text in them stays text). The files come in
// the repository layout (<|repo_name|>myproject\n, then <|file_sep|>NAME\nTEXT per file and
// <|file_sep|>filename\n for the file being edited) when the vocabulary has <|file_sep|>, else
// as text chunks each after "\n\n--- snippet ---\n\n" (as llama-server writes them). Throws
// Error naming `model` when the tokenizer has no FIM tokens.
std::vector<int> infill_prompt(const Tokenizer& tok, const std::string& prefix, const std::string& suffix,
                               const std::string& model = "the model", const std::vector<InfillFile>& extra = {});

}  // namespace camelid
