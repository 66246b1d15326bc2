#pragma once
// llama-server's POST /infill (code completion as editors call it): the request fields
// input_prefix, input_suffix, input_extra [{filename, text}], prompt (written after the prefix),
// n_predict, stream and the sampling fields of /v1/completions (temperature, top_k, top_p, min_p,
// repeat_penalty, seed, stop, grammar, ...); the response in llama-server's /completion shape:
// {"content", "stop": true, "tokens_predicted", "tokens_evaluated", "stop_type", ...}, streamed
// as `data: {"content": ..., "stop": false}` events and a last one with "stop": true.
#include <string>
#include <vector>

#include "chat/infill_prompt.h"
#include "server/openai_api.h"

namespace camelid::api {

struct InfillRequest {
  CompletionRequest completion;  // sampling, stop, stream, n_predict as max_tokens (-1: to the context's end)
  std::string prefix;            // input_prefix + prompt
  std::string suffix;
  std::vector<InfillFile> extra;
};

// Throws ApiError(400) naming the offending field.
InfillRequest parse_infill_request(const std::string& body, uint64_t default_seed, int vocab_size);

// A streamed piece of the middle.
json infill_chunk(const std::string& content, int tokens_predicted, int tokens_evaluated);

struct InfillEnd {
  std::string content;        // the whole middle ("" in a stream: the pieces carried it)
  std::string finish_reason;  // "stop" or "length" (as ChoiceResult)
  bool stopped_by_word = false;
  int tokens_predicted = 0, tokens_evaluated = 0;
  std::string model;
  double prompt_ms = 0, predicted_ms = 0;
};
// The whole response, or a stream's last event.
json infill_final(const InfillEnd& e);

}  // namespace camelid::api
