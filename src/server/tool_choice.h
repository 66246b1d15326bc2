#pragma once
// tool_choice "required" and a named function, enforced while sampling: a grammar that lets the
// model write nothing but tool calls, in the format its chat template teaches (so the reply
// parses back through parse_tool_calls), each naming a declared function and with arguments
// matching the function's JSON-schema `parameters` where json_schema_grammar can enforce them
// (any JSON object otherwise).
#include <nlohmann/json.hpp>
#include <string>

namespace camelid::tools {

enum class CallFormat {
  LlamaJson,    // Llama 3.x: {"name": "f", "parameters": {...}}, several separated by "; "
  Hermes,       // <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>
  FunctionTag,  // <function=f>{...}</function> (functionary v3.1, Llama 3.1's custom format)
};

// The format a chat template teaches, from its source (Llama 3.x JSON when it names no tag).
CallFormat call_format(const std::string& template_source);

// GBNF text accepting one call of any of `tools` (OpenAI tool objects, already checked by the
// request parser), or up to 8 of them when `several`.
std::string tool_choice_grammar(const nlohmann::ordered_json& tools, CallFormat format, bool several);

}  // namespace camelid::tools
