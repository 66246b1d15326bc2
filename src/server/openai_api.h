#pragma once
// The OpenAI wire format: request parsing with validation (-> ApiError with the HTTP status and
// OpenAI error type), and the JSON of responses and streamed chunks.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/grammar_parse.h"
#include "runtime/sampler.h"
#include "server/tool_calls.h"

namespace camelid::api {

using json = nlohmann::ordered_json;  // keeps key order: responses read like OpenAI's, tools reach templates as sent

class ApiError : public Error {
 public:
  ApiError(int status, const std::string& message, std::string type = "invalid_request_error",
           std::string param = "", std::string code = "")
      : Error(message), status(status), type(std::move(type)), param(std::move(param)), code(std::move(code)) {}
  int status;
  std::string type, param, code;
  json to_json() const;
};

// ApiError(400, "invalid_request_error") naming the request field `param`.
[[noreturn]] inline void bad_request(const std::string& param, const std::string& msg) {
  throw ApiError(400, msg, "invalid_request_error", param);
}

enum class ToolChoice { Auto, None, Required, Named };

struct CompletionRequest {
  bool chat = false;
  std::string model;                // "" when the client did not name one (any name is accepted)
  json messages;                    // chat; assistant tool_calls' arguments parsed into objects
  json tools;                       // chat, optional; what the template gets (none: null, named: that tool)
  std::vector<std::string> tool_names;  // the declared functions' names
  ToolChoice tool_choice = ToolChoice::Auto;
  std::string tool_choice_name;     // ToolChoice::Named
  bool parallel_tool_calls = true;  // false: only the first call is reported
  std::string prompt;               // completions, text form
  std::vector<int> prompt_ids;      // completions, token form
  int max_tokens = -1;              // -1: up to the end of the context (chat's default; completions: 16)
  int n = 1;                        // choices, 1..16; choice i samples with seed + i
  int logprobs = -1;                // -1: off; else the number of alternatives per token (0..20)
  SamplingParams sampling;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;       // stream_options.include_usage
  std::shared_ptr<const grammar::Grammar> grammar;  // response_format / grammar: structured output
  bool llama_format = false;        // llama-server's /completion shape (POST /infill), not OpenAI's
  bool grammar_for_tools = false;   // `grammar` enforces tool_choice: the tool-call marker tokens may be sampled
  // Whether replies are parsed for tool calls.
  bool parse_tools() const { return chat && !tool_names.empty() && tool_choice != ToolChoice::None; }
};

// body: the raw HTTP body. Throws ApiError(400) naming the offending field. vocab_size > 0: token
// ids (prompt, logit_bias) must be below it.
CompletionRequest parse_completion_request(const std::string& body, bool chat, uint64_t default_seed, int vocab_size = 0);

struct Usage {
  int prompt_tokens = 0, completion_tokens = 0;
  json to_json() const;
};

// What every response and chunk of one request carries.
struct ResponseMeta {
  std::string id;
  long created = 0;
  std::string model;
};

// One choice of a whole response.
struct ChoiceResult {
  std::string text;                      // content (chat) or text (completions)
  std::vector<tools::ToolCall> calls;    // chat: reported as message.tool_calls
  std::string finish_reason;
  json logprobs = nullptr;               // built by LogprobsBuilder, or null
};

json completion_response(const CompletionRequest& r, const ResponseMeta& m, const std::vector<ChoiceResult>& choices,
                         const Usage& usage);

// Streamed chunks of choice `index`; finish_reason "" means null.
json role_chunk(const CompletionRequest& r, const ResponseMeta& m, int index);
json completion_chunk(const CompletionRequest& r, const ResponseMeta& m, int index, const std::string& text,
                      const std::string& finish_reason, json logprobs = nullptr);
// A tool call as OpenAI streams it: id, type and name with empty arguments, then the arguments.
std::vector<json> tool_call_chunks(const CompletionRequest& r, const ResponseMeta& m, int index,
                                   const std::vector<tools::ToolCall>& calls);
json usage_chunk(const CompletionRequest& r, const ResponseMeta& m, const Usage& usage);

// OpenAI's logprobs of one choice. Chat: {"content": [{token, logprob, bytes, top_logprobs}]};
// completions: {tokens, token_logprobs, top_logprobs, text_offset}. `take()` returns what was
// added since the last take (for a streamed chunk) and leaves the builder empty.
class LogprobsBuilder {
 public:
  explicit LogprobsBuilder(bool chat) : chat_(chat) { clear(); }
  // token_text(id): the token as text (its bytes are reported as UTF-8 of that text).
  template <class TokenText>
  void add(const TokenLogprob& lp, TokenText&& token_text) {
    std::vector<std::pair<std::string, float>> top;
    for (auto& [id, l] : lp.top) top.emplace_back(token_text(id), l);
    add(token_text(lp.id), lp.logprob, top);
  }
  void add(const std::string& token, float logprob, const std::vector<std::pair<std::string, float>>& top);
  bool empty() const;
  json take();

 private:
  void clear();
  bool chat_;
  size_t offset_ = 0;  // completions: bytes of text before the next token
  json j_;
};

}  // namespace camelid::api
