// A model's reply parsed for tool calls (every format), whole and streamed in uneven pieces:
// any bytes must end in content + calls, and the streamed result must equal the whole one.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/tool_calls.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const auto& declared : {std::vector<std::string>{}, std::vector<std::string>{"search", "get_weather"}}) {
    const auto whole = camelid::tools::parse_tool_calls(text, declared);
    camelid::tools::ToolCallStream s(declared);
    std::string content;
    for (size_t i = 0, step = 1; i < text.size(); i += step, step = step % 7 + 1) content += s.push(text.substr(i, step));
    const auto end = s.finish();
    if (end.calls.size() != whole.calls.size()) std::abort();
    for (size_t i = 0; i < end.calls.size(); ++i)
      if (end.calls[i].name != whole.calls[i].name || end.calls[i].arguments != whole.calls[i].arguments) std::abort();
    if (whole.calls.empty() && content + end.content != whole.content) std::abort();
  }
  return 0;
}
