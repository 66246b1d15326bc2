// Speculative decoding in `camelid chat` and `camelid serve` (--lookup / --draft MODEL): greedy
// output identical to plain decoding, through the CLI and the HTTP API, with one slot or several
// serving concurrent requests; requests it does not cover (logprobs, grammar) still work.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "cli_runner.h"
#include "server_process.h"

using namespace camelid::test;
using json = nlohmann::json;

namespace {

const std::string kModel = fixture("models/tiny-llama2");

// Reply text only: stdout of a chat over two turns (the second reuses the first's cache).
std::string chat_stdout(const std::string& extra) {
  const std::string input = write_temp("spec-chat.txt", "the cat sat on the mat the cat sat on the\nand then?\n");
  auto r = run_camelid("chat -m " + q(kModel) + " --temp 0 -n 40 --ctx 512" + extra + " < " + q(input));
  EXPECT_EQ(r.status, 0) << extra << "\n" << r.out;
  return r.out;
}

}  // namespace

TEST(ChatSpeculative, LookupAndDraftRepliesEqualPlainGreedy) {
  const std::string plain = chat_stdout("");
  ASSERT_GT(plain.size(), 20u) << plain;
  for (const std::string& extra : std::vector<std::string>{" --lookup", " --lookup --draft-max 3", " --draft " + q(kModel)})
    EXPECT_EQ(chat_stdout(extra), plain) << extra;
  // The stats line says what speculation did.
  const std::string input = write_temp("spec-chat1.txt", "hello hello hello\n");
  auto r = run_camelid("chat -m " + q(kModel) + " --temp 0 -n 8 --draft " + q(kModel) + " < " + q(input), true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("[speculative (draft model): "), std::string::npos) << r.out;
}

namespace {

httplib::Result post(const ServerProcess& s, const std::string& path, const json& body) {
  httplib::Client c("127.0.0.1", s.port());
  c.set_read_timeout(120, 0);
  return c.Post(path.c_str(), body.dump(), "application/json");
}

// The texts of a fixed set of greedy requests (completions and a two-turn chat).
std::vector<std::string> greedy_texts(const ServerProcess& s) {
  std::vector<std::string> out;
  for (const char* prompt : {"the cat sat on the mat the cat sat on the", "one two three one two three one", "Hi"}) {
    auto r = post(s, "/v1/completions", {{"prompt", prompt}, {"max_tokens", 48}, {"temperature", 0}});
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
    out.push_back(r ? json::parse(r->body)["choices"][0]["text"].get<std::string>() : "");
  }
  json msgs = {{{"role", "user"}, {"content", "tell me a story about a cat"}}};
  for (int turn = 0; turn < 2; ++turn) {  // the second turn reuses the first's cached prefix
    auto r = post(s, "/v1/chat/completions", {{"messages", msgs}, {"max_tokens", 32}, {"temperature", 0}});
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
    const std::string reply = r ? json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>() : "";
    out.push_back(reply);
    msgs.push_back({{"role", "assistant"}, {"content", reply}});
    msgs.push_back({{"role", "user"}, {"content", "and then?"}});
  }
  // Streamed: the same text as whole.
  httplib::Client c("127.0.0.1", s.port());
  c.set_read_timeout(120, 0);
  auto r = c.Post("/v1/completions", json{{"prompt", "one two three one two three one"}, {"max_tokens", 48}, {"temperature", 0}, {"stream", true}}.dump(),
                  "application/json");
  std::string streamed;
  if (r)
    for (size_t at = 0; (at = r->body.find("data: {", at)) != std::string::npos;) {
      const size_t end = r->body.find("\n\n", at);
      streamed += json::parse(r->body.substr(at + 6, end - at - 6))["choices"][0]["text"].get<std::string>();
      at = end;
    }
  out.push_back(streamed);
  return out;
}

const std::string kServe = "-m '" + kModel + "' --ctx 512 --threads 2";

}  // namespace

TEST(ServeSpeculative, LookupAndDraftEqualPlainGreedyOverHttp) {
  std::vector<std::string> plain;
  {
    ServerProcess s(kServe + " --parallel 1");
    plain = greedy_texts(s);
  }
  ASSERT_FALSE(plain[0].empty());
  EXPECT_EQ(plain[5], plain[1]);
  for (const std::string& extra : std::vector<std::string>{" --lookup", " --draft '" + kModel + "' --draft-max 4"}) {
    ServerProcess s(kServe + " --parallel 1" + extra);
    EXPECT_EQ(greedy_texts(s), plain) << extra;
    // The requests were generated speculatively (/health counts the guesses).
    httplib::Client c("127.0.0.1", s.port());
    auto h = c.Get("/health");
    ASSERT_TRUE(h);
    const json sp = json::parse(h->body)["speculative"];
    EXPECT_GT(sp["drafted"].get<long>(), 0) << h->body;
    EXPECT_GT(sp["accepted"].get<long>(), 0) << h->body;
    // Not covered by speculation (logprobs, grammar): decoded plainly, still served.
    auto r = post(s, "/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 4}, {"temperature", 0}, {"logprobs", 2}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    r = post(s, "/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 4}, {"grammar", "root ::= \"yes\" | \"no\""}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    const std::string text = json::parse(r->body)["choices"][0]["text"];
    EXPECT_TRUE(text == "yes" || text == "no") << text;
  }
}

namespace {

// Greedy completions of repetitive prompts sent all at once; their texts in order.
std::vector<std::string> concurrent_texts(const ServerProcess& s) {
  const std::vector<std::string> prompts = {"the cat sat on the mat the cat sat on the", "one two three one two three one",
                                            "a b c d a b c d a b", "Hi", "red green blue red green blue red"};
  std::vector<std::string> out(prompts.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < prompts.size(); ++i)
    clients.emplace_back([&, i] {
      auto r = post(s, "/v1/completions", {{"prompt", prompts[i]}, {"max_tokens", 40 + 4 * int(i)}, {"temperature", 0}});
      if (r && r->status == 200) out[i] = json::parse(r->body)["choices"][0]["text"].get<std::string>();
    });
  for (auto& t : clients) t.join();
  return out;
}

}  // namespace

TEST(ServeSpeculative, SeveralSlotsServeConcurrentRequestsSpeculatively) {
  std::vector<std::string> plain;
  {
    ServerProcess s(kServe + " --parallel 4");
    plain = concurrent_texts(s);
  }
  for (const auto& t : plain) ASSERT_FALSE(t.empty());
  for (const std::string& extra : std::vector<std::string>{" --lookup", " --draft '" + kModel + "' --draft-max 3"}) {
    ServerProcess s(kServe + " --parallel 4" + extra);
    EXPECT_EQ(concurrent_texts(s), plain) << extra;
    httplib::Client c("127.0.0.1", s.port());
    auto h = c.Get("/health");
    ASSERT_TRUE(h);
    const json j = json::parse(h->body);
    EXPECT_EQ(j["slots"], 4) << h->body;
    EXPECT_GT(j["speculative"]["accepted"].get<long>(), 0) << h->body;
  }
  auto h = run_camelid("serve --help");
  EXPECT_NE(h.out.find("--draft"), std::string::npos);
  EXPECT_NE(h.out.find("continuous batching"), std::string::npos) << h.out;
}
