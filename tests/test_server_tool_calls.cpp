// Tool calls parsed out of a model's reply, whole and streamed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/tool_calls.h"

using namespace camelid::tools;
using json = nlohmann::json;

namespace {

const std::vector<std::string> kDeclared = {"get_weather", "search"};

ParsedReply parse(const std::string& text, const std::vector<std::string>& declared = kDeclared) {
  return parse_tool_calls(text, declared);
}

void expect_call(const ToolCall& c, const std::string& name, const json& args) {
  EXPECT_EQ(c.name, name);
  EXPECT_EQ(json::parse(c.arguments), args) << c.arguments;
}

// Streams `text` in pieces of `step` bytes; returns streamed content + finish's rest, and the calls.
ParsedReply streamed(const std::string& text, size_t step, const std::vector<std::string>& declared = kDeclared) {
  ToolCallStream s(declared);
  std::string content;
  for (size_t i = 0; i < text.size(); i += step) content += s.push(text.substr(i, step));
  ParsedReply end = s.finish();
  end.content = content + end.content;
  return end;
}

TEST(ToolCalls, LlamaJsonSingleAndSeveral) {
  auto r = parse(R"({"name": "get_weather", "parameters": {"city": "Paris", "days": 3}})");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.content, "");
  expect_call(r.calls[0], "get_weather", {{"city", "Paris"}, {"days", 3}});

  r = parse("  {\"name\": \"get_weather\", \"parameters\": {\"city\": \"A\"}};\n{\"name\": \"search\", \"arguments\": {\"q\": \"x\"}}\n");
  ASSERT_EQ(r.calls.size(), 2u);
  expect_call(r.calls[0], "get_weather", {{"city", "A"}});
  expect_call(r.calls[1], "search", {{"q", "x"}});

  r = parse(R"(<|python_tag|>{"name": "search", "parameters": {"q": "llamas"}})");
  ASSERT_EQ(r.calls.size(), 1u);
  expect_call(r.calls[0], "search", {{"q", "llamas"}});

  // Arguments given as a JSON string (as OpenAI sends them) and no arguments at all.
  r = parse(R"({"name": "search", "arguments": "{\"q\": 1}"})");
  ASSERT_EQ(r.calls.size(), 1u);
  expect_call(r.calls[0], "search", {{"q", 1}});
  r = parse(R"({"name": "search"})");
  ASSERT_EQ(r.calls.size(), 1u);
  expect_call(r.calls[0], "search", json::object());
}

TEST(ToolCalls, JsonThatIsNotACallStaysContent) {
  for (const std::string t : {
           R"({"name": "unknown_fn", "parameters": {}})",        // not a declared function
           R"({"name": "search", "parameters": {}} and then some text)",
           R"({"name": "search", "parameters": [1, 2]})",        // arguments must be an object
           R"({"name": 42, "parameters": {}})",
           R"({"name": "search", "parameters": {"q": "x"}, "colour": "red"})",  // not call-shaped
           R"({"name": "search", "parameters": {"q": )",          // cut short
           R"({"name": "search", "parameters": {"q": "x"}, "name": "y"})",  // duplicate key
           "{}", "{", "[", "", "   ", "plain text"}) {
    auto r = parse(t);
    EXPECT_TRUE(r.calls.empty()) << t;
    EXPECT_EQ(r.content, t);
  }
  // Without declared tools any name goes (e.g. a named tool_choice filters later).
  EXPECT_EQ(parse(R"({"name": "anything", "parameters": {}})", {}).calls.size(), 1u);
}

TEST(ToolCalls, BuiltinPythonTagCalls) {
  auto r = parse(R"(<|python_tag|>brave_search.call(query="Menlo Park weather"))");
  ASSERT_EQ(r.calls.size(), 1u);
  expect_call(r.calls[0], "brave_search", {{"query", "Menlo Park weather"}});

  r = parse("Let me look.<|python_tag|>wolfram_alpha.call(query='solve x^2 = 4', n=2, exact=True, opts=[1, 2.5, None])");
  EXPECT_EQ(r.content, "Let me look.");
  ASSERT_EQ(r.calls.size(), 1u);
  expect_call(r.calls[0], "wolfram_alpha", {{"query", "solve x^2 = 4"}, {"n", 2}, {"exact", true}, {"opts", {1, 2.5, nullptr}}});

  // Escapes inside Python strings.
  r = parse(R"(<|python_tag|>brave_search.call(query="say \"hi\"\n"))");
  ASSERT_EQ(r.calls.size(), 1u);
  expect_call(r.calls[0], "brave_search", {{"query", "say \"hi\"\n"}});

  // Anything else after the tag is code for the interpreter.
  r = parse("<|python_tag|>import sys\nprint(sys.version)");
  ASSERT_EQ(r.calls.size(), 1u);
  expect_call(r.calls[0], "ipython", {{"code", "import sys\nprint(sys.version)"}});
  // A tag with nothing after it is no call.
  EXPECT_TRUE(parse("<|python_tag|>  ").calls.empty());
}

TEST(ToolCalls, HermesAndFunctionTags) {
  auto r = parse("I'll check both.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>\n"
                 "<tool_call>{\"name\": \"search\", \"arguments\": {\"q\": \"fjords\"}}</tool_call>");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.content, "I'll check both.\n\n");
  expect_call(r.calls[0], "get_weather", {{"city", "Oslo"}});
  expect_call(r.calls[1], "search", {{"q", "fjords"}});

  // A malformed block stays text; a good one next to it is still a call; a missing close tag at
  // the end of the reply is accepted.
  r = parse("<tool_call>{not json}</tool_call> <tool_call>{\"name\": \"search\", \"arguments\": {}}");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.content, "<tool_call>{not json}</tool_call> ");

  r = parse(R"(<function=get_weather>{"city": "Rome"}</function>)");
  ASSERT_EQ(r.calls.size(), 1u);
  expect_call(r.calls[0], "get_weather", {{"city", "Rome"}});
  EXPECT_TRUE(parse("<function=bad name>{}</function>").calls.empty());
  EXPECT_TRUE(parse("<tool_call></tool_call>").calls.empty());
}

TEST(ToolCalls, PythonicListNeedsDeclaredNames) {
  auto r = parse(R"([get_weather(city="Lima"), search(q='x', limit=5)])");
  ASSERT_EQ(r.calls.size(), 2u);
  expect_call(r.calls[0], "get_weather", {{"city", "Lima"}});
  expect_call(r.calls[1], "search", {{"q", "x"}, {"limit", 5}});
  EXPECT_TRUE(parse(R"([print(x=1)])").calls.empty());
  EXPECT_TRUE(parse(R"([get_weather(city="Lima")])", {}).calls.empty());
  EXPECT_TRUE(parse(R"([get_weather("Lima")])").calls.empty());  // positional
  EXPECT_TRUE(parse("[1, 2, 3]").calls.empty());
}

TEST(ToolCalls, StreamedEqualsWholeAtEveryChunking) {
  const std::vector<std::string> texts = {
      "Hello there, no tools here.",
      R"(  {"name": "get_weather", "parameters": {"city": "Paris"}})",
      R"({"answer": 42})",
      "Sure.<|python_tag|>brave_search.call(query=\"x\")",
      "Checking <tool_call>{\"name\": \"search\", \"arguments\": {\"q\": \"y\"}}</tool_call> done",
      "a < b and <tool_ is not a tag",
      "[get_weather(city=\"Lima\")]",
  };
  for (auto& t : texts)
    for (size_t step : {size_t(1), size_t(2), size_t(5), t.size()}) {
      ParsedReply whole = parse(t), s = streamed(t, step);
      const bool calls = !whole.calls.empty();
      EXPECT_EQ(s.calls.size(), whole.calls.size()) << t;
      EXPECT_EQ(s.content, calls && whole.content.find_first_not_of(" \n") == std::string::npos ? "" : whole.content)
          << t << " step " << step;
      for (size_t i = 0; i < std::min(s.calls.size(), whole.calls.size()); ++i) {
        EXPECT_EQ(s.calls[i].name, whole.calls[i].name);
        EXPECT_EQ(s.calls[i].arguments, whole.calls[i].arguments);
      }
    }
}

TEST(ToolCalls, StreamReleasesPlainTextEarly) {
  ToolCallStream s(kDeclared);
  EXPECT_EQ(s.push("  "), "");          // leading space: a call may still follow
  EXPECT_EQ(s.push("Hi"), "  Hi");
  EXPECT_EQ(s.push(" <tool"), " ");     // a possible tag's start waits
  EXPECT_EQ(s.push("box>"), "<toolbox>");
  EXPECT_EQ(s.push(" {\"name\": \"x\"}"), " {\"name\": \"x\"}");  // braces mid-text are text
  EXPECT_TRUE(s.finish().calls.empty());
}

TEST(ToolCalls, IdsLookLikeOpenAIsAndAreStable) {
  const std::string a = tool_call_id("chatcmpl-1", 0), b = tool_call_id("chatcmpl-1", 1);
  EXPECT_EQ(a.rfind("call_", 0), 0u);
  EXPECT_EQ(a.size(), 29u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, tool_call_id("chatcmpl-1", 0));
}

TEST(ToolCalls, HostileInputsDoNotCrash) {
  std::string deep(100000, '[');
  EXPECT_TRUE(parse(deep).calls.empty());
  std::string deep_obj = "{\"name\": \"search\", \"parameters\": " + std::string(5000, '[') + std::string(5000, ']') + "}";
  EXPECT_TRUE(parse(deep_obj).calls.empty());
  EXPECT_TRUE(parse("<|python_tag|>x.call(a=" + std::string(10000, '[')).calls.size() == 1u);  // code, not a call
  std::string many;
  for (int i = 0; i < 2000; ++i) many += "<tool_call>";
  EXPECT_TRUE(parse(many).calls.empty());
}

}  // namespace
