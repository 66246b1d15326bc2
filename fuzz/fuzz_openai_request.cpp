// OpenAI request bodies as `camelid serve` receives them: JSON parsing with the nesting limit, then
// the completion / chat-completion field checks. Any input must end in a request or an ApiError.
#include <cstdint>
#include <string>

#include "server/openai_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  for (bool chat : {false, true}) {
    try {
      camelid::api::parse_completion_request(body, chat, 42);
      camelid::api::parse_completion_request(body, chat, 42, 128256);  // ids checked against a vocabulary
    } catch (const camelid::api::ApiError&) {
    }
  }
  return 0;
}
