// One choice's pipeline (tokens -> text -> stop strings -> tool calls -> OpenAI JSON), fed with
// the tokens a model would emit, whole and streamed: what a tiny random model never produces.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "server/choice_stream.h"

using namespace camelid;
using namespace camelid::test;
using json = nlohmann::json;

namespace {

const Tokenizer& llama31() {
  static auto t = Tokenizer::load(fixture("tokenizers/llama3/tokenizer.json"));
  return *t;
}

api::CompletionRequest request(json body, bool chat = true) {
  return api::parse_completion_request(body.dump(), chat, 1, llama31().vocab_size());
}

json weather_tools() {
  return json::array({{{"type", "function"},
                       {"function", {{"name", "get_weather"}, {"parameters", {{"type", "object"}}}}}}});
}

struct Outcome {
  std::vector<json> chunks;
  api::ChoiceResult result;
};

// The fixture's Llama 3 vocabulary calls id 128010 <|reserved_special_token_5|>; Llama 3.1's is
// <|python_tag|> there, which tool_marker_tokens() would find by name.
constexpr int kPythonTagId = 128010;

Outcome run(const api::CompletionRequest& r, const std::vector<int>& ids, const std::string& finish = "stop") {
  static const api::ResponseMeta meta{"chatcmpl-test", 1700000000, "m"};
  auto markers = tool_marker_tokens(llama31());
  if (markers.empty()) markers = {{kPythonTagId, "<|python_tag|>"}};
  ChoiceStream c(llama31(), r, meta, 0, markers);
  Outcome out;
  for (int id : ids) {
    TokenLogprob lp{id, -0.5f, {{id, -0.5f}, {0, -2.f}}};
    for (auto& j : c.push(id, r.logprobs >= 0 ? &lp : nullptr)) out.chunks.push_back(j);
  }
  for (auto& j : c.finish(finish)) out.chunks.push_back(j);
  out.result = c.result();
  return out;
}

std::vector<int> enc(const std::string& s) { return llama31().encode(s, false, false); }

// The message a client assembles from chunks, as the openai client's stream helper does.
json assemble(const std::vector<json>& chunks) {
  json msg = {{"content", ""}, {"tool_calls", json::array()}};
  std::string finish;
  for (auto& ch : chunks) {
    const json& c = ch["choices"][0];
    if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
    const json& d = c["delta"];
    if (d.contains("content") && d["content"].is_string()) msg["content"] = msg["content"].get<std::string>() + d["content"].get<std::string>();
    if (d.contains("tool_calls"))
      for (auto& t : d["tool_calls"]) {
        const size_t i = t["index"];
        if (i == msg["tool_calls"].size()) {
          EXPECT_TRUE(t.contains("id") && t.contains("type")) << "a call's first delta names it";
          msg["tool_calls"].push_back({{"id", t["id"]}, {"type", t["type"]}, {"function", {{"name", t["function"]["name"]}, {"arguments", ""}}}});
        }
        auto& f = msg["tool_calls"][i]["function"];
        f["arguments"] = f["arguments"].get<std::string>() + t["function"].value("arguments", "");
      }
  }
  msg["finish_reason"] = finish;
  return msg;
}

TEST(ChoiceStream, LlamaJsonCallWholeAndStreamed) {
  json body = {{"messages", {{{"role", "user"}, {"content", "weather?"}}}}, {"tools", weather_tools()}};
  const auto ids = enc(R"({"name": "get_weather", "parameters": {"city": "Paris"}})");
  Outcome whole = run(request(body), ids);
  ASSERT_EQ(whole.result.calls.size(), 1u);
  EXPECT_EQ(whole.result.finish_reason, "tool_calls");
  json resp = api::completion_response(request(body), {"chatcmpl-test", 1, "m"}, {whole.result}, {10, int(ids.size())});
  const json& msg = resp["choices"][0]["message"];
  EXPECT_TRUE(msg["content"].is_null());
  EXPECT_EQ(msg["tool_calls"][0]["type"], "function");
  EXPECT_EQ(msg["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(json::parse(msg["tool_calls"][0]["function"]["arguments"].get<std::string>()), json({{"city", "Paris"}}));
  EXPECT_EQ(msg["tool_calls"][0]["id"].get<std::string>().rfind("call_", 0), 0u);
  EXPECT_EQ(resp["choices"][0]["finish_reason"], "tool_calls");

  body["stream"] = true;
  Outcome s = run(request(body), ids);
  json got = assemble(s.chunks);
  EXPECT_EQ(got["content"], "");
  EXPECT_EQ(got["finish_reason"], "tool_calls");
  ASSERT_EQ(got["tool_calls"].size(), 1u);
  EXPECT_EQ(got["tool_calls"][0], msg["tool_calls"][0]) << "streamed call equals the whole one";
}

TEST(ChoiceStream, PythonTagTokenBecomesABuiltinCall) {
  json body = {{"messages", {{{"role", "user"}, {"content", "search"}}}}, {"tools", weather_tools()}, {"stream", true}};
  int tag = llama31().token_id("<|python_tag|>");
  if (tag < 0) tag = kPythonTagId;
  ASSERT_TRUE(llama31().is_special(tag));
  std::vector<int> ids = enc("Searching.");
  ids.push_back(tag);
  for (int id : enc("brave_search.call(query=\"llama facts\")")) ids.push_back(id);
  Outcome s = run(request(body), ids);
  json got = assemble(s.chunks);
  EXPECT_EQ(got["content"], "Searching.");
  ASSERT_EQ(got["tool_calls"].size(), 1u);
  EXPECT_EQ(got["tool_calls"][0]["function"]["name"], "brave_search");
  EXPECT_EQ(json::parse(got["tool_calls"][0]["function"]["arguments"].get<std::string>()), json({{"query", "llama facts"}}));
}

TEST(ChoiceStream, HermesCallsAmongText) {
  json body = {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"tools", weather_tools()}, {"stream", true}};
  const auto ids = enc("Let me check.<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>"
                       "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Bergen\"}}</tool_call>");
  json got = assemble(run(request(body), ids).chunks);
  EXPECT_EQ(got["content"], "Let me check.");
  ASSERT_EQ(got["tool_calls"].size(), 2u);
  EXPECT_NE(got["tool_calls"][0]["id"], got["tool_calls"][1]["id"]);
  // parallel_tool_calls false: only the first is reported.
  body["parallel_tool_calls"] = false;
  EXPECT_EQ(assemble(run(request(body), ids).chunks)["tool_calls"].size(), 1u);
}

TEST(ChoiceStream, ToolChoiceNoneAndPlainJsonStayText) {
  const auto ids = enc(R"({"name": "get_weather", "parameters": {"city": "Paris"}})");
  json body = {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"tools", weather_tools()}, {"tool_choice", "none"}};
  Outcome r = run(request(body), ids);
  EXPECT_TRUE(r.result.calls.empty());
  EXPECT_EQ(r.result.text, R"({"name": "get_weather", "parameters": {"city": "Paris"}})");
  EXPECT_EQ(r.result.finish_reason, "stop");
  body.erase("tool_choice");
  body.erase("tools");  // no tools: never parsed
  EXPECT_TRUE(run(request(body), ids).result.calls.empty());
  // An answer that is JSON but no call streams as text.
  body["tools"] = weather_tools();
  body["stream"] = true;
  json got = assemble(run(request(body), enc(R"({"answer": 42})")).chunks);
  EXPECT_EQ(got["content"], R"({"answer": 42})");
  EXPECT_EQ(got["finish_reason"], "stop");
}

TEST(ChoiceStream, StopStringsLengthAndLogprobs) {
  json body = {{"prompt", "x"}, {"stop", {"END"}}, {"logprobs", 1}};
  const auto ids = enc("one two END three");
  Outcome r = run(request(body, false), ids, "length");
  EXPECT_EQ(r.result.text, "one two ");
  EXPECT_EQ(r.result.finish_reason, "stop");
  const json& lp = r.result.logprobs;
  ASSERT_TRUE(lp.is_object());
  // Tokens are reported up to the one that completed the stop string.
  EXPECT_GE(lp["tokens"].size(), 3u);
  EXPECT_EQ(lp["tokens"].size(), lp["token_logprobs"].size());
  EXPECT_EQ(lp["text_offset"][0], 0);
  EXPECT_EQ(lp["text_offset"][1], lp["tokens"][0].get<std::string>().size());
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);

  json chat = {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"logprobs", true}, {"top_logprobs", 2}, {"stream", true}};
  Outcome s = run(request(chat), enc("hello world"), "length");
  size_t n = 0;
  for (auto& c : s.chunks) {
    const json& l = c["choices"][0]["logprobs"];
    if (l.is_null()) continue;
    for (auto& e : l["content"]) {
      ++n;
      EXPECT_EQ(e["logprob"], -0.5);
      EXPECT_EQ(e["top_logprobs"].size(), 2u);
      EXPECT_TRUE(e["bytes"].is_array());
    }
  }
  EXPECT_EQ(n, enc("hello world").size());
  EXPECT_EQ(s.chunks.back()["choices"][0]["finish_reason"], "length");
}

// Writes a tool-call reply, whole and as an event stream, for tests/openai_client: the official
// client parses what this pipeline produces (a tiny random model never calls a tool itself).
TEST(ChoiceStream, RecordsToolCallRepliesForTheNpmClient) {
  const char* dir = std::getenv("CAMELID_RECORD_DIR");
  if (!dir) GTEST_SKIP() << "set CAMELID_RECORD_DIR to record (tests/openai_client/run.sh does)";
  json body = {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"tools", weather_tools()}};
  const auto ids = enc("Let me check.<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>"
                       "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Bergen\", \"days\": 2}}</tool_call>");
  const api::ResponseMeta meta{"chatcmpl-test", 1700000000, "m"};
  const auto whole_req = request(body);
  Outcome whole = run(whole_req, ids);
  std::ofstream(std::string(dir) + "/tool_whole.json")
      << api::completion_response(whole_req, meta, {whole.result}, {12, int(ids.size())}).dump();
  body["stream"] = true;
  const auto stream_req = request(body);
  std::ofstream sse(std::string(dir) + "/tool_stream.sse");
  sse << "data: " << api::role_chunk(stream_req, meta, 0).dump() << "\n\n";
  for (auto& c : run(stream_req, ids).chunks) sse << "data: " << c.dump() << "\n\n";
  sse << "data: [DONE]\n\n";
  EXPECT_TRUE(sse.good());
}

}  // namespace
