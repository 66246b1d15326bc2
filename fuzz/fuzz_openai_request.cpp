// OpenAI request bodies as `camelid serve` receives them: JSON parsing with the nesting limit, then
// the completion / chat-completion field checks, the tool_choice grammar built from a chat
// request's tools, and llama-server's /infill fields. Any input must end in a request or an
// ApiError (a tool grammar too large to build: an Error).
#include <cstdint>
#include <string>

#include "server/infill_api.h"
#include "server/openai_api.h"
#include "server/structured_output.h"
#include "server/tool_choice.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  for (bool chat : {false, true}) {
    try {
      camelid::api::parse_completion_request(body, chat, 42);
      auto r = camelid::api::parse_completion_request(body, chat, 42, 128256);  // ids checked against a vocabulary
      if (r.chat && (r.tool_choice == camelid::api::ToolChoice::Required || r.tool_choice == camelid::api::ToolChoice::Named))
        for (auto f : {camelid::tools::CallFormat::LlamaJson, camelid::tools::CallFormat::Hermes, camelid::tools::CallFormat::FunctionTag})
          camelid::grammar_from_gbnf(camelid::tools::tool_choice_grammar(r.tools, f, r.parallel_tool_calls));
    } catch (const camelid::Error&) {
    }
  }
  try {
    camelid::api::parse_infill_request(body, 42, 32016);
  } catch (const camelid::api::ApiError&) {
  }
  return 0;
}
