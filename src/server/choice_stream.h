#pragma once
// One choice of a completion, from the engine's tokens to OpenAI's JSON: tokens are decoded, stop
// strings cut the text, tool calls are parsed out (chat with tools), logprobs are collected. The
// same pipeline serves streamed responses (push/finish return the chunks) and whole ones
// (result()), so both always agree.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/openai_api.h"
#include "server/stop_strings.h"
#include "server/tool_calls.h"
#include "tokenizer/tokenizer.h"

namespace camelid {

// The special tokens of this vocabulary that mark tool calls (<|python_tag|>, <tool_call>, ...).
std::vector<std::pair<int, std::string>> tool_marker_tokens(const Tokenizer& tok);

class ChoiceStream {
 public:
  // markers: special tokens that a skip-special decoder would drop but that mark tool calls
  // (<|python_tag|>, a Hermes fine-tune's <tool_call>): their text goes to the tool-call parser.
  ChoiceStream(const Tokenizer& tok, const api::CompletionRequest& r, const api::ResponseMeta& m, int index,
               std::vector<std::pair<int, std::string>> markers = {});

  // A generated token and, when the request asked for them, its logprobs: the chunks to stream now.
  std::vector<api::json> push(int token, const TokenLogprob* lp = nullptr);
  // True once a stop string matched: later tokens are ignored (the caller cancels the request).
  bool stopped() const { return stops_.stopped(); }
  // The end (the engine's finish reason): the last chunks, the finish chunk last.
  std::vector<api::json> finish(const std::string& engine_finish);
  // The whole choice, after finish().
  api::ChoiceResult result() const { return result_; }

 private:
  void emit(const std::string& text, std::vector<api::json>& out);
  std::string token_text(int id) const;

  const Tokenizer& tok_;
  const api::CompletionRequest& r_;
  const api::ResponseMeta& m_;
  int index_;
  std::vector<std::pair<int, std::string>> markers_;
  StreamDecoder dec_;
  StopStringFilter stops_;
  std::optional<tools::ToolCallStream> tools_;
  std::optional<api::LogprobsBuilder> lp_;
  api::ChoiceResult result_;
  bool finished_ = false;
};

}  // namespace camelid
