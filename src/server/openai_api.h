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

struct CompletionRequest {
  bool chat = false;
  std::string model;                // "" when the client did not name one
  json messages;                    // chat
  json tools;                       // chat, optional
  std::string prompt;               // completions, text form
  std::vector<int> prompt_ids;      // completions, token form
  int max_tokens = -1;              // -1: up to the end of the context
  SamplingParams sampling;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;       // stream_options.include_usage
  std::shared_ptr<const grammar::Grammar> grammar;  // response_format / grammar: structured output
};

// body: the raw HTTP body. Throws ApiError(400) naming the offending field.
CompletionRequest parse_completion_request(const std::string& body, bool chat, uint64_t default_seed);

struct Usage {
  int prompt_tokens = 0, completion_tokens = 0;
  json to_json() const;
};

// Whole responses.
json completion_response(const CompletionRequest& r, const std::string& id, long created,
                         const std::string& model, const std::string& text,
                         const std::string& finish_reason, const Usage& usage);
// Streamed chunks; finish_reason "" means null, text ignored for the role-only first chat chunk.
json completion_chunk(const CompletionRequest& r, const std::string& id, long created,
                      const std::string& model, const std::string& text, const std::string& finish_reason,
                      bool role_chunk = false);
json usage_chunk(const CompletionRequest& r, const std::string& id, long created, const std::string& model,
                 const Usage& usage);

}  // namespace camelid::api
