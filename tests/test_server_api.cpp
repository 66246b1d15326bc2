// OpenAI API completeness end to end: n, logprobs, penalties, logit_bias, default max_tokens,
// any model name, tools accepted, /tokenize, /detokenize, /metrics, the request log, --alias.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "fixtures.h"
#include "server_process.h"

using namespace camelid::test;
using json = nlohmann::json;

namespace {

// Per test process: a Release and a sanitizer run may go at once.
std::string log_path() { return ::testing::TempDir() + "camelid_server_api." + std::to_string(getpid()) + ".log"; }

ServerProcess& api_server() {
  static ServerProcess s("-m '" + fixture("models/tiny-llama3") + "' --parallel 4 --ctx 256 --threads 2 --alias camel 2>'" +
                         log_path() + "'");
  return s;
}

json api_post(const std::string& path, const json& body, int expect_status = 200) {
  httplib::Client c("127.0.0.1", api_server().port());
  c.set_read_timeout(60, 0);
  auto r = c.Post(path.c_str(), body.dump(), "application/json");
  EXPECT_TRUE(r) << "no response";
  if (!r) return {};
  EXPECT_EQ(r->status, expect_status) << path << " " << body.dump() << " -> " << r->body;
  return json::parse(r->body);
}

std::vector<json> api_stream(const std::string& path, json body) {
  body["stream"] = true;
  httplib::Client c("127.0.0.1", api_server().port());
  c.set_read_timeout(60, 0);
  auto r = c.Post(path.c_str(), body.dump(), "application/json");
  std::vector<json> chunks;
  EXPECT_TRUE(r);
  if (!r) return chunks;
  size_t pos = 0;
  while ((pos = r->body.find("data: ", pos)) != std::string::npos) {
    const size_t end = r->body.find("\n\n", pos);
    const std::string data = r->body.substr(pos + 6, end - pos - 6);
    pos = end;
    if (data != "[DONE]") chunks.push_back(json::parse(data));
  }
  return chunks;
}

// The end-of-turn ids of tiny-llama3, banned so that generations run to their length.
const json kNoEos = {{"128001", -100}, {"128008", -100}, {"128009", -100}};

json chat(const std::string& user, json extra = json::object()) {
  json b = {{"messages", {{{"role", "user"}, {"content", user}}}}, {"max_tokens", 6}, {"temperature", 0.9}, {"seed", 3}};
  b.update(extra);
  return b;
}

TEST(ServerApi, AnyModelNameIsServedUnderTheAlias) {
  json r = api_post("/v1/chat/completions", chat("hi", {{"model", "gpt-4o"}}));
  EXPECT_EQ(r["model"], "camel");
  httplib::Client c("127.0.0.1", api_server().port());
  EXPECT_EQ(json::parse(c.Get("/v1/models")->body)["data"][0]["id"], "camel");
}

TEST(ServerApi, CompletionsDefaultToSixteenTokensChatToTheContext) {
  json r = api_post("/v1/completions", {{"prompt", "Once"}, {"temperature", 0}, {"logit_bias", kNoEos}});
  EXPECT_EQ(r["usage"]["completion_tokens"], 16);
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  json m = api_post("/v1/chat/completions", chat("hi", {{"max_tokens", nullptr}, {"max_completion_tokens", 3}, {"logit_bias", kNoEos}}));
  EXPECT_EQ(m["usage"]["completion_tokens"], 3);
}

TEST(ServerApi, LogitBiasForcesAToken) {
  json r = api_post("/v1/completions", {{"prompt", "Once"}, {"max_tokens", 4}, {"temperature", 0}, {"logit_bias", {{"1234", 100}}}});
  json d = api_post("/detokenize", {{"tokens", {1234, 1234, 1234, 1234}}});
  EXPECT_EQ(r["choices"][0]["text"], d["content"]);
}

TEST(ServerApi, FrequencyPenaltyBreaksRepetition) {
  // Two tokens biased far above the rest: greedy repeats the likelier forever; with a frequency
  // penalty its logit falls by 2 per use until the other one wins.
  json base = {{"prompt", "Once"}, {"max_tokens", 40}, {"temperature", 0}, {"logit_bias", {{"1234", 100}, {"4321", 100}}},
               {"logprobs", 0}};
  const json a = api_post("/v1/completions", base)["choices"][0]["logprobs"]["tokens"];
  base["frequency_penalty"] = 2;
  const json b = api_post("/v1/completions", base)["choices"][0]["logprobs"]["tokens"];
  ASSERT_EQ(a.size(), 40u);
  ASSERT_EQ(b.size(), 40u);
  EXPECT_EQ(std::count(a.begin(), a.end(), a[0]), 40);
  EXPECT_LT(std::count(b.begin(), b.end(), b[0]), 40);
}

TEST(ServerApi, ChatLogprobsWholeAndStreamed) {
  json body = chat("hello", {{"logprobs", true}, {"top_logprobs", 3}, {"temperature", 0}, {"logit_bias", kNoEos}});
  json r = api_post("/v1/chat/completions", body);
  const json& content = r["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 6u);
  for (auto& e : content) {
    EXPECT_LE(e["logprob"].get<double>(), 0);
    ASSERT_EQ(e["top_logprobs"].size(), 3u);
    EXPECT_EQ(e["top_logprobs"][0]["logprob"], e["logprob"]) << "greedy takes the most likely token";
    EXPECT_EQ(e["top_logprobs"][0]["token"], e["token"]);
    EXPECT_GE(e["top_logprobs"][0]["logprob"].get<double>(), e["top_logprobs"][1]["logprob"].get<double>());
  }
  json streamed = json::array();
  for (auto& c : api_stream("/v1/chat/completions", body))
    if (!c["choices"].empty() && !c["choices"][0]["logprobs"].is_null())
      for (auto& e : c["choices"][0]["logprobs"]["content"]) streamed.push_back(e);
  EXPECT_EQ(streamed, content);
}

TEST(ServerApi, NChoicesEachWithItsOwnSeed) {
  json r = api_post("/v1/chat/completions", chat("story", {{"n", 3}, {"seed", 40}}));
  ASSERT_EQ(r["choices"].size(), 3u);
  int total = 0;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r["choices"][i]["index"], i);
    json one = api_post("/v1/chat/completions", chat("story", {{"seed", 40 + i}}));
    EXPECT_EQ(r["choices"][i]["message"]["content"], one["choices"][0]["message"]["content"]) << i;
    total += one["usage"]["completion_tokens"].get<int>();
    EXPECT_EQ(r["usage"]["prompt_tokens"], one["usage"]["prompt_tokens"]);
  }
  EXPECT_EQ(r["usage"]["completion_tokens"], total);
  std::vector<std::string> text(3);
  std::vector<std::string> finish(3);
  for (auto& c : api_stream("/v1/chat/completions", chat("story", {{"n", 3}, {"seed", 40}})))
    for (auto& ch : c["choices"]) {
      const int i = ch["index"];
      if (ch["delta"].contains("content")) text[i] += ch["delta"]["content"].get<std::string>();
      if (!ch["finish_reason"].is_null()) finish[i] = ch["finish_reason"];
    }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(text[i], r["choices"][i]["message"]["content"]);
    EXPECT_EQ(finish[i], r["choices"][i]["finish_reason"]);
  }
}

TEST(ServerApi, ToolsAndToolMessagesReachTheTemplate) {
  const json tools = {{{"type", "function"}, {"function", {{"name", "get_weather"}, {"parameters", {{"type", "object"}}}}}},
                      {{"type", "function"}, {"function", {{"name", "get_time"}, {"parameters", {{"type", "object"}}}}}}};
  json msgs = {{{"role", "user"}, {"content", "Weather in Paris?"}},
               {{"role", "assistant"}, {"content", nullptr},
                {"tool_calls", {{{"id", "call_1"}, {"type", "function"},
                                 {"function", {{"name", "get_weather"}, {"arguments", "{\"city\": \"Paris\"}"}}}}}}},
               {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny, 21C"}}};
  json with = api_post("/v1/chat/completions", {{"messages", msgs}, {"tools", tools}, {"max_tokens", 2}});
  json none = api_post("/v1/chat/completions", {{"messages", msgs}, {"tools", tools}, {"tool_choice", "none"}, {"max_tokens", 2}});
  json named = api_post("/v1/chat/completions", {{"messages", msgs}, {"tools", tools}, {"max_tokens", 2},
                                              {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_time"}}}}}});
  json req = api_post("/v1/chat/completions", {{"messages", msgs}, {"tools", tools}, {"tool_choice", "required"}, {"max_tokens", 2}});
  const int p_with = with["usage"]["prompt_tokens"], p_none = none["usage"]["prompt_tokens"], p_named = named["usage"]["prompt_tokens"];
  EXPECT_LT(p_none, p_named) << "tool_choice none: the template gets no tools";
  EXPECT_LT(p_named, p_with) << "a named tool_choice: the template gets only that tool";
  EXPECT_EQ(req["usage"]["prompt_tokens"], p_with);
  // The tool result is in the prompt: a different result, a different prompt length.
  msgs[2]["content"] = "sunny, 21C, light wind from the west";
  EXPECT_GT(api_post("/v1/chat/completions", {{"messages", msgs}, {"tools", tools}, {"max_tokens", 2}})["usage"]["prompt_tokens"].get<int>(), p_with);
}

TEST(ServerApi, NewFieldsAreValidated) {
  auto param = [](const json& body, bool is_chat = true) {
    return api_post(is_chat ? "/v1/chat/completions" : "/v1/completions", body, 400)["error"]["param"];
  };
  EXPECT_EQ(param(chat("x", {{"n", 0}})), "n");
  EXPECT_EQ(param(chat("x", {{"n", 17}})), "n");
  EXPECT_EQ(param(chat("x", {{"logprobs", true}, {"top_logprobs", 21}})), "top_logprobs");
  EXPECT_EQ(param(chat("x", {{"top_logprobs", 2}})), "top_logprobs");
  EXPECT_EQ(param(chat("x", {{"logprobs", 2}})), "logprobs");
  EXPECT_EQ(param({{"prompt", "x"}, {"logprobs", 21}}, false), "logprobs");
  EXPECT_EQ(param(chat("x", {{"logit_bias", {{"abc", 1}}}})), "logit_bias");
  EXPECT_EQ(param(chat("x", {{"logit_bias", {{"128256", 1}}}})), "logit_bias");  // vocab is 128256
  EXPECT_EQ(param(chat("x", {{"logit_bias", {{"5", 101}}}})), "logit_bias");
  EXPECT_EQ(param(chat("x", {{"presence_penalty", 2.5}})), "presence_penalty");
  EXPECT_EQ(param(chat("x", {{"frequency_penalty", "high"}})), "frequency_penalty");
  EXPECT_EQ(param(chat("x", {{"tools", "get_weather"}})), "tools");
  EXPECT_EQ(param(chat("x", {{"tools", {{{"type", "function"}, {"function", {{"name", 3}}}}}}})), "tools[0].function.name");
  EXPECT_EQ(param(chat("x", {{"tool_choice", "sometimes"}})), "tool_choice");
  EXPECT_EQ(param(chat("x", {{"tool_choice", "required"}})), "tool_choice");  // without tools
  EXPECT_EQ(param(chat("x", {{"tools", {{{"type", "function"}, {"function", {{"name", "a"}}}}}},
                             {"tool_choice", {{"type", "function"}, {"function", {{"name", "b"}}}}}})),
            "tool_choice");
  EXPECT_EQ(param({{"messages", {{{"role", "assistant"}, {"tool_calls", {{{"function", {{"name", 1}}}}}}}}}}),
            "messages[0].tool_calls[0].function.name");
  EXPECT_EQ(param({{"prompt", {1, 2, 999999}}}, false), "prompt");
}

TEST(ServerApi, TokenizeAndDetokenize) {
  json t = api_post("/tokenize", {{"content", "Hello world"}});
  ASSERT_TRUE(t["tokens"].is_array());
  EXPECT_EQ(t["tokens"].size(), 2u);
  json bos = api_post("/tokenize", {{"content", "Hello world"}, {"add_special", true}});
  EXPECT_EQ(bos["tokens"][0], 128000);
  EXPECT_EQ(api_post("/detokenize", {{"tokens", t["tokens"]}})["content"], "Hello world");
  json pieces = api_post("/tokenize", {{"content", "Hello world"}, {"with_pieces", true}});
  EXPECT_EQ(pieces["tokens"][1]["piece"], " world");
  EXPECT_EQ(api_post("/tokenize", {{"content", "<|eot_id|>"}})["tokens"].size(), 1u);
  EXPECT_GT(api_post("/tokenize", {{"content", "<|eot_id|>"}, {"parse_special", false}})["tokens"].size(), 1u);
  api_post("/tokenize", {{"text", "x"}}, 400);
  api_post("/detokenize", {{"tokens", {1, -1}}}, 400);
  api_post("/detokenize", {{"tokens", {128256}}}, 400);
}

TEST(ServerApi, MetricsAndRequestLog) {
  json r = api_post("/v1/completions", {{"prompt", "metrics"}, {"max_tokens", 2}});
  api_post("/v1/completions", {{"prompt", 3}}, 400);
  httplib::Client c("127.0.0.1", api_server().port());
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  const std::string& t = m->body;
  for (const char* want : {"camelid_requests_total{endpoint=\"/v1/completions\",status=\"200\"}",
                           "camelid_requests_total{endpoint=\"/v1/completions\",status=\"400\"}",
                           "camelid_prompt_tokens_total ", "camelid_completion_tokens_total ", "camelid_requests_queued 0",
                           "camelid_kv_cells_total 1024", "camelid_time_to_first_token_seconds_bucket{le=\"+Inf\"}",
                           "camelid_request_duration_seconds_count ", "# TYPE camelid_request_duration_seconds histogram"})
    EXPECT_NE(t.find(want), std::string::npos) << want << "\n" << t;
  // One line per request on stderr, with its id.
  const std::string log = read_file(log_path());
  const std::string id = r["id"];
  const size_t at = log.find(id);
  ASSERT_NE(at, std::string::npos) << log;
  const std::string line = log.substr(at, log.find('\n', at) - at);
  std::remove(log_path().c_str());
  for (const char* want : {"/v1/completions 200", "prompt=", "completion=", "ttft=", "tok/s", "finish="})
    EXPECT_NE(line.find(want), std::string::npos) << line;
}

TEST(ServerApi, DefaultContextFitsTheMemory) {
  ServerProcess s("-m '" + fixture("models/tiny-llama3") + "' --parallel 1 --threads 1");
  httplib::Client c("127.0.0.1", s.port());
  json h = json::parse(c.Get("/health")->body);
  // tiny-llama3's KV costs 512 bytes per token: its whole 131072-token context fits any test machine.
  EXPECT_EQ(h["ctx"], 131072);
  EXPECT_EQ(h["slots"], 1);
}

}  // namespace
