#pragma once
// Tool calls in a model's reply, as the Llama family writes them:
//  - Llama 3.1/3.2/3.3 JSON: `{"name": "f", "parameters": {...}}` (or "arguments"), several
//    separated by `;` or newlines, the whole reply (optionally after <|python_tag|>);
//  - Llama 3.1 built-in tools after <|python_tag|>: `brave_search.call(query="...")`,
//    `wolfram_alpha.call(query="...")`, any `tool.call(k=v, ...)`; other text after the tag is
//    code for the code interpreter: the `ipython` tool with {"code": text};
//  - Llama 3.1's `<function=f>{...}</function>` and Hermes `<tool_call>{"name", "arguments"}</tool_call>`
//    (several allowed, with text around them);
//  - Llama 3.2's pythonic list `[f(a=1), g(b="x")]` (only naming a declared function).
// The model's output is untrusted: anything that does not parse as a call stays content.
#include <string>
#include <string_view>
#include <vector>

namespace camelid::tools {

struct ToolCall {
  std::string name;
  std::string arguments;  // a JSON object, compact, as OpenAI sends `function.arguments`
};

struct ParsedReply {
  std::string content;  // the text outside the calls (all of it when there are none)
  std::vector<ToolCall> calls;
};

// `declared`: the function names of the request's tools. A JSON or pythonic call must name one of
// them when there are any (so that a reply that is merely JSON is not taken for a call); calls
// after <|python_tag|> and in <tool_call>/<function=> blocks are explicit and accepted by any name.
ParsedReply parse_tool_calls(std::string_view text, const std::vector<std::string>& declared);

// The same over streamed text: content is released as soon as it cannot be part of a call.
// Text from a possible call's start (a leading `{` or `[`, or a tag) is held to the end, where
// finish() parses the whole reply.
class ToolCallStream {
 public:
  explicit ToolCallStream(std::vector<std::string> declared) : declared_(std::move(declared)) {}
  std::string push(std::string_view text);  // content safe to stream now
  // The content not yet streamed (empty when only whitespace remains around calls) and the calls.
  ParsedReply finish();

 private:
  std::vector<std::string> declared_;
  std::string buf_;
  size_t emitted_ = 0;
  bool holding_ = false;
};

// A tool-call id as OpenAI's look ("call_" + 24 letters/digits), derived from a request id and
// the call's index (ids stay reproducible with the seed).
std::string tool_call_id(const std::string& request_id, size_t index);

}  // namespace camelid::tools
