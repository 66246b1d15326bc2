// Chat templates of the fixture models against jinja2 as transformers runs it
// (fixtures/reference/public-chat-*.json), plus the published Llama 3.1 / 3.2 templates.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chat/chat_prompt.h"
#include "chat/chat_template.h"
#include "fixtures.h"

namespace camelid {
namespace {

using camelid::test::read_json;
using camelid::test::read_file;

using json = nlohmann::ordered_json;

void check_reference(const char* ref_file, const char* model_dir) {
  const json ref = read_json(test::fixture(ref_file));
  const ChatTemplate t = ChatTemplate::from_model_dir(test::fixture(model_dir));
  EXPECT_FALSE(t.is_fallback());
  ASSERT_GE(ref["cases"].size(), 5u);
  for (const json& c : ref["cases"]) {
    ChatTemplateInputs in;
    in.messages = c["messages"];
    in.add_generation_prompt = c.value("add_generation_prompt", true);
    if (c.contains("rendered")) {
      EXPECT_EQ(t.render(in), c["rendered"].get<std::string>()) << c["messages"].dump();
    } else {
      const std::string want = c["error"];
      ASSERT_EQ(want.rfind("TemplateError: ", 0), 0u) << want;
      try {
        t.render(in);
        ADD_FAILURE() << "no error for " << c["messages"].dump();
      } catch (const jinja::RaisedError& e) {
        EXPECT_EQ(std::string("TemplateError: ") + e.what(), want);
      }
    }
  }
}

TEST(ChatTemplate, Llama2MatchesReference) { check_reference("reference/public-chat-llama2.json", "models/tiny-llama2"); }
TEST(ChatTemplate, Llama31MatchesReference) { check_reference("reference/public-chat-llama3.json", "models/tiny-llama3"); }

json weather_tool() {
  return json::parse(R"({"type": "function", "function": {"name": "get_weather", "description": "Current weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})");
}

TEST(ChatTemplate, Llama31ToolsAndToolCalls) {
  ChatTemplate t(read_file(test::fixture("templates/llama-3.1-instruct.jinja")), "<|begin_of_text|>", "<|eot_id|>");
  ChatTemplateInputs in;
  in.tools = json::array({weather_tool()});
  in.messages = json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "ipython", "content": "{\"temp\": 21}"}])");
  const std::string out = t.render(in);
  EXPECT_NE(out.find("Environment: ipython"), std::string::npos) << out;
  EXPECT_NE(out.find("\"name\": \"get_weather\""), std::string::npos) << out;
  // Tools go into the first user message by default, as indented JSON.
  EXPECT_NE(out.find("Given the following functions"), std::string::npos) << out;
  EXPECT_NE(out.find("{\n    \"type\": \"function\""), std::string::npos) << out;
  // No builtin_tools: a tool call ends with <|eot_id|>; a str "is iterable" in Jinja, so the
  // template prints tool output through tojson (quoted), exactly as jinja2 does.
  EXPECT_NE(out.find("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>"), std::string::npos) << out;
  EXPECT_NE(out.find("<|start_header_id|>ipython<|end_header_id|>\n\n\"{\\\"temp\\\": 21}\"<|eot_id|>"), std::string::npos) << out;
  const std::string tail = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(out.substr(out.size() - tail.size()), tail);
  // Only one tool call per message is supported by this template: its own error message.
  in.messages[2]["tool_calls"].push_back(in.messages[2]["tool_calls"][0]);
  try {
    t.render(in);
    ADD_FAILURE() << "expected the template's exception";
  } catch (const jinja::RaisedError& e) {
    EXPECT_STREQ(e.what(), "This model only supports single tool-calls at once!");
  }
}

TEST(ChatTemplate, Llama32DateAndTools) {
  ChatTemplate t(read_file(test::fixture("templates/llama-3.2-instruct.jinja")), "<|begin_of_text|>", "<|eot_id|>");
  ChatTemplateInputs in;
  in.messages = json::parse(R"([{"role": "user", "content": "Hi"}])");
  in.extra = {{"date_string", "01 Feb 2025"}};
  std::string out = t.render(in);
  EXPECT_NE(out.find("Today Date: 01 Feb 2025\n"), std::string::npos) << out;
  EXPECT_EQ(out.rfind("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n", 0), 0u) << out;
  in.tools = json::array({weather_tool()});
  in.messages = json::parse(R"([{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"},
    {"role": "assistant", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
    {"role": "tool", "content": "cold"}])");
  out = t.render(in);
  EXPECT_NE(out.find("<|start_header_id|>ipython<|end_header_id|>\n\n\"cold\"<|eot_id|>"), std::string::npos) << out;
  EXPECT_NE(out.find("\"parameters\": {\"city\": \"Oslo\"}"), std::string::npos) << out;
  // Without date_string the template takes today's date from strftime_now.
  in.extra = json::object();
  out = t.render(in);
  EXPECT_EQ(out.find("26 Jul 2024"), std::string::npos);
  EXPECT_NE(out.find("Today Date: "), std::string::npos);
}

TEST(ChatTemplate, FallbackWithoutTemplate) {
  ChatTemplate t = ChatTemplate::from_model_dir(test::fixture("models/stories260K"));
  EXPECT_TRUE(t.is_fallback());
  ChatTemplateInputs in;
  in.messages = json::parse(R"([{"role": "system", "content": "S"}, {"role": "user", "content": "Hi "}])");
  EXPECT_EQ(t.render(in), "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST]");
  ChatTemplate t3 = ChatTemplate::from_model_dir(test::fixture("tokenizers/llama3"));
  EXPECT_FALSE(t3.is_fallback());
}

// A turn ends at the model's eos ids, then the tokenizer's, then the family's end-of-turn tokens.
TEST(EndOfTurn, Llama3StopsAtEot) {
  // This tokenizer names 128008 <|reserved_special_token_4|> (Llama 3.0), so it has no <|eom_id|>.
  const auto tok = Tokenizer::load(test::fixture("models/tiny-llama3"));
  const int eot = tok->token_id("<|eot_id|>");
  ASSERT_GE(eot, 0);
  const std::vector<int> ids = end_of_turn_ids(*tok, {128001});
  EXPECT_EQ(ids.front(), 128001);
  EXPECT_NE(std::find(ids.begin(), ids.end(), eot), ids.end());
  EXPECT_EQ(std::set<int>(ids.begin(), ids.end()).size(), ids.size()) << "no duplicates";
  EXPECT_EQ(end_of_turn_ids(*tok, {eot, 128001})[0], eot) << "the model's own ids come first";
}

TEST(EndOfTurn, Llama2StopsAtEosOnly) {
  const auto tok = Tokenizer::load(test::fixture("models/tiny-llama2"));
  EXPECT_EQ(end_of_turn_ids(*tok, {2}), std::vector<int>{2});
  EXPECT_EQ(end_of_turn_ids(*tok, {}), std::vector<int>{2}) << "</s> from the tokenizer";
}

}  // namespace
}  // namespace camelid
