#pragma once
// Supervised fine-tuning data (camelid finetune): JSONL files, one example per line, in one of
//   OpenAI chat form  {"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": ...}, ...],
//                      "tools": [...] (optional, passed to the chat template)}
//   Alpaca form       {"instruction": ..., "input": ... (optional), "output": ...}
//                      -> user = instruction (+ "\n\n" + input when input is not empty), assistant = output
//   pre-tokenized     {"input_ids": [...], "labels": [...] (optional; -100 = no loss; absent = all)}
// A conversation is rendered with the model's chat template and tokenized as chat does
// (chat/chat_prompt.h: special tokens only from the template). Loss falls ONLY on assistant
// tokens: for each assistant message i, the conversation up to i is rendered with the
// generation prompt (P_i) and up to and including i without it (F_i); the tokens of the whole
// conversation from the first one where it differs from P_i up to the first one where it
// differs from F_i (or its end) are the assistant's: its content and whatever the template puts
// after it (the end-of-turn token). Token sequences are compared, not text, so a template that
// merges text across the boundary still gives a mask of whole tokens.
// Bad input is an Error naming the file and line: malformed JSON, an unknown shape, a message
// without a string role, an example with no assistant turn (or no labelled token), a token id
// out of the vocabulary, a file with no examples.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/rows.h"

namespace camelid {
class Tokenizer;
class ChatTemplate;
}  // namespace camelid

namespace camelid::train {

struct SftExample {
  std::vector<int> ids;
  std::vector<int> labels;  // labels[i]: the target predicted at position i-1 (ids[i]) or -1 (no loss)
  std::string where;        // "FILE:LINE"
};

struct SftRenderer {
  const Tokenizer* tok = nullptr;       // required for chat/Alpaca lines
  const ChatTemplate* tmpl = nullptr;   // required for chat/Alpaca lines
  int64_t now = 0;                      // strftime_now()'s clock (fixed so every prefix renders alike)
  int vocab = 0;
};

inline constexpr size_t kMaxAssistantTurns = 256;

// Messages (+ tools, or null) -> ids and assistant labels. Throws Error (prefixed by `where`).
SftExample render_conversation(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                               const SftRenderer& r, const std::string& where);

// Every example of a JSONL text (blank lines skipped); `path` names it in errors.
std::vector<SftExample> sft_examples_from_text(const std::string& text, const std::string& path,
                                               const SftRenderer& r);
// The same from files, concatenated in order; an Error when there are no examples at all.
std::vector<SftExample> read_sft_files(const std::vector<std::string>& paths, const SftRenderer& r);

// One example per row: its first T+1 tokens (inputs the first T, targets the labels of the
// next T), padded with `pad` (target -1). Longer examples are truncated (counted); an example
// left without any labelled target by the cut is dropped (counted).
class SftRows : public RowSource {
 public:
  SftRows(std::vector<SftExample> examples, int T, int pad);
  int64_t count() const override { return int64_t(ex_.size()); }
  int seq_len() const override { return T_; }
  size_t tokens() const override { return tokens_; }
  void fill(int64_t i, int* tokens, int* targets) const override;
  int64_t targets(int64_t i) const override { return n_targets_[size_t(i)]; }
  int64_t truncated() const { return truncated_; }
  int64_t dropped() const { return dropped_; }
  int64_t target_tokens() const;

 private:
  std::vector<SftExample> ex_;
  std::vector<int64_t> n_targets_;
  int T_, pad_;
  size_t tokens_ = 0;
  int64_t truncated_ = 0, dropped_ = 0;
};

// The longest example's length minus one (the T that fits every example).
int longest_row(const std::vector<SftExample>& ex);

// Splits off the last `fraction` of the examples (at least one, leaving at least one).
std::vector<SftExample> split_examples_tail(std::vector<SftExample>& ex, double fraction);

}  // namespace camelid::train
