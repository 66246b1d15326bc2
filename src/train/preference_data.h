#pragma once
// Preference pairs for DPO and reward-model training, one JSON object per line (JSONL):
//   {"prompt": "text", "chosen": "text", "rejected": "text"}             plain text
//   {"prompt": [{"role": "user", "content": ...}, ...], "chosen": "reply", "rejected": "reply"}
//                                                                       chat: the model's template
//   {"prompt_ids": [1, 5], "chosen_ids": [7, 2], "rejected_ids": [9, 2]} pre-tokenized (tests)
// and an optional "margin" (a number: the reward model's ranking margin m; default 0).
// Plain text: prompt = encode(prompt) with BOS, response = encode_continuation(reply) + the
// first eos id. Chat: prompt = the template over the messages with the generation prompt;
// response = the tokens that rendering the conversation with the reply as the assistant's turn
// adds after them (the template's end-of-turn token included). Chosen/rejected may also be a
// list holding one assistant message. Every error names the source and line.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace camelid {
class Tokenizer;
class ChatTemplate;
}

namespace camelid::train {

struct PreferencePair {
  std::vector<int> prompt, chosen, rejected;  // token ids; chosen/rejected: the responses only
  double margin = 0;
  int line = 0;                               // 1-based line in its file
};

struct PreferenceEncoder {
  const Tokenizer* tok = nullptr;     // null: only the *_ids form is accepted
  // The chat template, asked for at the first chat-form line (null or returning null: refused).
  std::function<const ChatTemplate*()> tmpl;
  std::vector<int> eos_ids;           // the first ends a plain-text response (none: nothing appended)
};

// Parses JSONL text. vocab_size bounds every id. Empty lines are skipped; a file without pairs,
// a malformed line, an empty response or an id out of range is an Error naming source:line.
std::vector<PreferencePair> parse_preferences(std::string_view text, const std::string& source,
                                              const PreferenceEncoder& enc, int vocab_size);

// Reads a file (at most 1 GiB) and parses it.
std::vector<PreferencePair> read_preferences(const std::string& path, const PreferenceEncoder& enc, int vocab_size);

}  // namespace camelid::train
