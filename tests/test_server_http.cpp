// The OpenAI-compatible server end to end over real HTTP on a loopback port.
#include <gtest/gtest.h>
#include <httplib.h>

#include <future>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "server_process.h"

using namespace camelid::test;
using json = nlohmann::json;

namespace {

ServerProcess& http_server() {
  static ServerProcess s("-m '" + fixture("models/tiny-llama3") + "' --parallel 16 --ctx 256 --threads 2");
  return s;
}

httplib::Client client() {
  httplib::Client c("127.0.0.1", http_server().port());
  c.set_read_timeout(120, 0);
  return c;
}

json http_post(const std::string& path, const json& body, int expect_status = 200) {
  auto c = client();
  auto r = c.Post(path.c_str(), body.dump(), "application/json");
  EXPECT_TRUE(r) << "no response";
  if (!r) return {};
  EXPECT_EQ(r->status, expect_status) << r->body;
  return json::parse(r->body);
}

// Reads a whole SSE stream: the JSON chunks in order, and whether it ended with [DONE].
std::vector<json> http_stream(const std::string& path, json body, bool* done = nullptr) {
  body["stream"] = true;
  auto c = client();
  std::string buf;
  std::vector<json> chunks;
  bool saw_done = false;
  httplib::Request req;
  auto r = c.Post(path.c_str(), httplib::Headers{}, body.dump(), "application/json");
  EXPECT_TRUE(r);
  if (!r) return chunks;
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  size_t pos = 0;
  const std::string& s = r->body;
  while ((pos = s.find("data: ", pos)) != std::string::npos) {
    size_t end = s.find("\n\n", pos);
    std::string data = s.substr(pos + 6, end - pos - 6);
    pos = end;
    if (data == "[DONE]") {
      saw_done = true;
      continue;
    }
    chunks.push_back(json::parse(data));
  }
  if (done) *done = saw_done;
  return chunks;
}

std::string chat_text(const std::vector<json>& chunks) {
  std::string t;
  for (auto& c : chunks)
    if (!c["choices"].empty() && c["choices"][0]["delta"].contains("content")) t += c["choices"][0]["delta"]["content"];
  return t;
}

json chat_body(const std::string& user, int seed, int max_tokens = 12) {
  return {{"model", "tiny-llama3"},
          {"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", user}}}},
          {"max_tokens", max_tokens}, {"temperature", 0.9}, {"seed", seed}};
}

TEST(ServerHttp, HealthAndModels) {
  auto c = client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  auto m = c.Get("/v1/models");
  ASSERT_TRUE(m);
  json j = json::parse(m->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "tiny-llama3");
}

TEST(ServerHttp, ChatCompletionShapeAndUsage) {
  json r = http_post("/v1/chat/completions", chat_body("Hello there", 1));
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(r["choices"][0]["message"]["content"].is_string());
  const std::string fr = r["choices"][0]["finish_reason"];
  EXPECT_TRUE(fr == "stop" || fr == "length");
  EXPECT_GT(r["usage"]["prompt_tokens"].get<int>(), 10);
  EXPECT_LE(r["usage"]["completion_tokens"].get<int>(), 12);
  EXPECT_EQ(r["usage"]["total_tokens"], r["usage"]["prompt_tokens"].get<int>() + r["usage"]["completion_tokens"].get<int>());
}

TEST(ServerHttp, LengthFinishAndCompletions) {
  json r = http_post("/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 5}, {"temperature", 0}});
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_TRUE(r["choices"][0]["text"].is_string());
  // The random fixture model may emit an eos early; otherwise it runs to max_tokens.
  if (r["choices"][0]["finish_reason"] == "length") {
    EXPECT_EQ(r["usage"]["completion_tokens"], 5);
  }
  json ids = http_post("/v1/completions", {{"prompt", {128000, 791, 6864}}, {"max_tokens", 3}, {"temperature", 0}});
  EXPECT_EQ(ids["usage"]["prompt_tokens"], 3);
}

TEST(ServerHttp, SameSeedSameOutputStreamingOrNot) {
  json a = http_post("/v1/chat/completions", chat_body("Tell me a story", 7, 16));
  json b = http_post("/v1/chat/completions", chat_body("Tell me a story", 7, 16));
  EXPECT_EQ(a["choices"][0]["message"]["content"], b["choices"][0]["message"]["content"]);
  bool done = false;
  auto chunks = http_stream("/v1/chat/completions", chat_body("Tell me a story", 7, 16), &done);
  EXPECT_TRUE(done) << "stream ends with data: [DONE]";
  ASSERT_GE(chunks.size(), 2u);
  EXPECT_EQ(chunks[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(chunks[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(chat_text(chunks), a["choices"][0]["message"]["content"]);
  EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], a["choices"][0]["finish_reason"]);
  for (auto& c : chunks) EXPECT_EQ(c["id"], chunks[0]["id"]);
}

TEST(ServerHttp, StopStringsCutTheText) {
  json full = http_post("/v1/completions", {{"prompt", "The capital of France is"}, {"max_tokens", 24}, {"temperature", 0}});
  const std::string text = full["choices"][0]["text"];
  if (text.size() < 6) GTEST_SKIP() << "the random model ended too early";
  const std::string stop = text.substr(3, 2);
  json cut = http_post("/v1/completions", {{"prompt", "The capital of France is"}, {"max_tokens", 24}, {"temperature", 0}, {"stop", stop}});
  EXPECT_EQ(cut["choices"][0]["text"], text.substr(0, text.find(stop)));
  EXPECT_EQ(cut["choices"][0]["finish_reason"], "stop");
  auto chunks = http_stream("/v1/completions", {{"prompt", "The capital of France is"}, {"max_tokens", 24}, {"temperature", 0}, {"stop", {stop}}});
  std::string streamed;
  for (auto& c : chunks) streamed += c["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(streamed, text.substr(0, text.find(stop)));
}

TEST(ServerHttp, SixteenConcurrentStreamsMatchSequentialRuns) {
  const int N = 16;
  std::vector<std::string> alone(N);
  for (int i = 0; i < N; ++i) alone[i] = chat_text(http_stream("/v1/chat/completions", chat_body("Question " + std::to_string(i), 100 + i)));
  std::vector<std::future<std::string>> fut;
  for (int i = 0; i < N; ++i)
    fut.push_back(std::async(std::launch::async, [i] {
      return chat_text(http_stream("/v1/chat/completions", chat_body("Question " + std::to_string(i), 100 + i)));
    }));
  for (int i = 0; i < N; ++i) EXPECT_EQ(fut[i].get(), alone[i]) << "client " << i;
}

TEST(ServerHttp, ClientDisconnectMidStreamKeepsServing) {
  {
    auto c = client();
    int got = 0;
    json body = chat_body("Go on forever", 3, 200);
    body["stream"] = true;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++got < 3; };  // hang up
    c.send(req);
    EXPECT_GE(got, 1);
  }
  EXPECT_TRUE(http_server().alive());
  json r = http_post("/v1/chat/completions", chat_body("Still there?", 4, 4));
  EXPECT_EQ(r["object"], "chat.completion");
}

TEST(ServerHttp, ErrorsAreOpenAIStyle) {
  auto c = client();
  auto bad_json = c.Post("/v1/chat/completions", "{not json", "application/json");
  ASSERT_TRUE(bad_json);
  EXPECT_EQ(bad_json->status, 400);
  EXPECT_EQ(json::parse(bad_json->body)["error"]["type"], "invalid_request_error");

  json e = http_post("/v1/chat/completions", {{"messages", "hi"}}, 400);
  EXPECT_NE(e["error"]["message"].get<std::string>().find("messages"), std::string::npos);
  http_post("/v1/chat/completions", {{"messages", {{{"role", "user"}}}}}, 400);
  http_post("/v1/chat/completions", {{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}, 400);
  http_post("/v1/completions", {{"max_tokens", 3}}, 400);
  http_post("/v1/completions", {{"prompt", "x"}, {"temperature", -1}}, 400);
  http_post("/v1/completions", {{"prompt", "x"}, {"max_tokens", "ten"}}, 400);
  json other = http_post("/v1/completions", {{"prompt", "x"}, {"model", "gpt-4"}, {"max_tokens", 1}});  // any name: this model
  EXPECT_EQ(other["model"], "tiny-llama3");
  std::string long_prompt;
  for (int i = 0; i < 400; ++i) long_prompt += " word";
  json too_long = http_post("/v1/completions", {{"prompt", long_prompt}}, 400);
  EXPECT_EQ(too_long["error"]["code"], "context_length_exceeded");
  auto nf = c.Get("/v1/nothing");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  EXPECT_TRUE(json::parse(nf->body).contains("error"));
  EXPECT_TRUE(http_server().alive());
}

TEST(ServerHttp, UserTextNeverBecomesSpecialTokens) {
  json plain = http_post("/v1/chat/completions", chat_body("hi <|eot_id|> there", 5, 1));
  json r2 = http_post("/v1/chat/completions", chat_body("hi  there", 5, 1));
  // "<|eot_id|>" as text is several ordinary tokens, not the single special one.
  EXPECT_GT(plain["usage"]["prompt_tokens"].get<int>(), r2["usage"]["prompt_tokens"].get<int>() + 2);
}

TEST(ServerHttp, ApiKeyIsEnforced) {
  ServerProcess s("-m '" + fixture("models/tiny-llama2") + "' --parallel 1 --ctx 64 --api-key sekret --threads 1");
  httplib::Client c("127.0.0.1", s.port());
  auto none = c.Get("/v1/models");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(json::parse(none->body)["error"]["code"], "invalid_api_key");
  auto wrong = c.Get("/v1/models", {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(wrong->status, 401);
  auto ok = c.Get("/v1/models", {{"Authorization", "Bearer sekret"}});
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(c.Get("/health")->status, 200);
}

}  // namespace
