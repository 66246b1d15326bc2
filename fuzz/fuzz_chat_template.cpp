// Chat templates as they arrive inside downloaded models: parse, then render under a (small)
// sandbox budget. Input: the template source, optionally followed by a NUL byte and the JSON the
// template renders (a list of messages, or {"messages": [...], "tools": [...], ...more variables}).
// Any input must end in a rendered prompt or a camelid::Error; anything else escaping is a crash.
// fuzz/corpus/fuzz_chat_template also holds real templates with macros, call and filter blocks,
// Markup and strings holding }} and %} (tests/data/chat_templates).
// seeds: templates/llama-3.1-instruct.jinja templates/llama-3.2-instruct.jinja
#include <cstdint>
#include <string>

#include "chat/chat_template.h"
#include "core/json.h"

namespace {

const char* kDefaultMessages = R"({"messages": [
  {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"},
  {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
  {"role": "ipython", "content": "{\"temp\": 21}"}, {"role": "assistant", "content": "21 C."}, {"role": "user", "content": "Thanks"}],
  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t sep = input.find('\0');
  camelid::ChatTemplateInputs in;
  try {
    const auto vars = camelid::parse_ordered_json(sep == std::string::npos ? kDefaultMessages : input.substr(sep + 1), "fuzz input");
    if (vars.is_array()) {
      in.messages = vars;
    } else if (vars.is_object()) {
      for (auto it = vars.begin(); it != vars.end(); ++it) {
        if (it.key() == "messages") in.messages = it.value();
        else if (it.key() == "tools") in.tools = it.value();
        else in.extra[it.key()] = it.value();
      }
    }
  } catch (const camelid::Error&) {
    return 0;
  }
  // Small limits keep executions fast; they exercise the same checks as the defaults.
  camelid::jinja::Limits lim;
  lim.max_steps = 200000;
  lim.max_memory = 16 << 20;
  lim.max_string = 4 << 20;
  try {
    const camelid::ChatTemplate t(input.substr(0, sep), "<s>", "</s>");
    for (bool gen : {true, false}) {
      in.add_generation_prompt = gen;
      t.render(in, lim);
    }
  } catch (const camelid::Error&) {
  }
  return 0;
}
