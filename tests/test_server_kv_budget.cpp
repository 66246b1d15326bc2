// `serve --kv-budget`: the slots share a KV cache of that many positions; requests beyond what it
// holds wait for blocks instead of failing, the context is clamped to the budget, a bad value is
// a one-line error.
#include <gtest/gtest.h>
#include <httplib.h>

#include <future>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "fixtures.h"
#include "model/kv_cache.h"
#include "model/weights.h"
#include "server_process.h"

using namespace camelid;
using namespace camelid::test;
using json = nlohmann::json;

TEST(ServerKvBudget, RequestsBeyondTheBudgetWaitForBlocks) {
  const std::string model = fixture("models/tiny-llama3");
  const size_t per_token = KVCache::bytes_per_token(load_model(model)->config, DType::F16);
  char mib[64];
  std::snprintf(mib, sizeof mib, "%.9f", 64.0 * double(per_token) / 1048576.0);  // 64 positions: 4 blocks
  ServerProcess s("-m " + q(model) + " --parallel 4 --ctx 256 --threads 2 --kv-type f16 --kv-budget " + mib);
  httplib::Client c("127.0.0.1", s.port());
  c.set_read_timeout(60, 0);
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("camelid_kv_cells_total 64"), std::string::npos) << m->body;

  // Each needs 2 blocks (a short prompt + 20 tokens): two run at once, two wait; all complete.
  const json kNoEos = {{"128001", -100}, {"128008", -100}, {"128009", -100}};
  std::vector<std::future<json>> replies;
  for (int i = 0; i < 4; ++i)
    replies.push_back(std::async(std::launch::async, [&, i] {
      httplib::Client ci("127.0.0.1", s.port());
      ci.set_read_timeout(60, 0);
      const json body = {{"prompt", "budget " + std::to_string(i)}, {"max_tokens", 20}, {"logit_bias", kNoEos}};
      auto r = ci.Post("/v1/completions", body.dump(), "application/json");
      return r && r->status == 200 ? json::parse(r->body) : json{{"status", r ? r->status : -1}};
    }));
  for (auto& f : replies) {
    const json r = f.get();
    ASSERT_TRUE(r.contains("usage")) << r.dump();
    EXPECT_EQ(r["usage"]["completion_tokens"], 20) << r.dump();
  }
  // The pool's size and budget in bytes: all four blocks were allocated, none beyond the budget.
  m = c.Get("/metrics");
  ASSERT_TRUE(m);
  const std::string budget = std::to_string(64 * per_token);
  EXPECT_NE(m->body.find("camelid_kv_budget_bytes " + budget + "\n"), std::string::npos) << m->body;
  EXPECT_NE(m->body.find("camelid_kv_bytes " + budget + "\n"), std::string::npos) << m->body;
  EXPECT_NE(m->body.find("camelid_kv_blocks_cached "), std::string::npos) << m->body;
  // The context is the budget: a longer prompt is refused at once.
  std::string text;
  for (int i = 0; i < 80; ++i) text += " word" + std::to_string(i);
  auto r = c.Post("/v1/completions", json({{"prompt", text}, {"max_tokens", 1}}).dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("context is 64 tokens"), std::string::npos) << r->body;
}

TEST(ServerKvBudget, BadBudgetsAreOneLineErrors) {
  const std::string model = q(fixture("models/tiny-llama3"));
  CmdResult r = run_camelid("serve -m " + model + " --kv-budget -1", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("error: --kv-budget must be in 0..1e9 MiB"), std::string::npos) << r.out;
  r = run_camelid("serve -m " + model + " --kv-budget 0.0000001", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("holds no position"), std::string::npos) << r.out;
  r = run_camelid("serve -m " + model + " --prefill-chunk 300", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("error: --prefill-chunk must be in 0..256, got 300"), std::string::npos) << r.out;
}

// A draft model's cache can hold a whole context per slot: its bytes come off --kv-budget first,
// and /metrics counts both caches.
TEST(ServerKvBudget, TheDraftModelsCacheComesOffTheBudget) {
  const std::string model = fixture("models/tiny-llama3");
  const size_t per_token = KVCache::bytes_per_token(load_model(model)->config, DType::F16);
  auto mib = [&](int positions) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9f", double(positions) * double(per_token) / 1048576.0);
    return std::string(buf);
  };
  // The model drafts for itself: 2 slots x 64 positions of the draft's cache (a context of 60 in
  // whole blocks), 64 left for the model's.
  const std::string args = "-m " + q(model) + " --draft " + q(model) + " --parallel 2 --ctx 60 --threads 2 --kv-type f16";
  ServerProcess s(args + " --kv-budget " + mib(192));
  httplib::Client c("127.0.0.1", s.port());
  c.set_read_timeout(60, 0);
  const json body = {{"prompt", "a draft"}, {"max_tokens", 20}, {"logit_bias", {{"128001", -100}, {"128009", -100}}}};
  auto r = c.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("camelid_kv_cells_total 64\n"), std::string::npos) << m->body;
  EXPECT_NE(m->body.find("camelid_kv_budget_bytes " + std::to_string(192 * per_token) + "\n"), std::string::npos) << m->body;
  // Both caches hold the request's positions (a block each at least).
  const size_t at = m->body.find("\ncamelid_kv_bytes ");
  ASSERT_NE(at, std::string::npos);
  EXPECT_GE(std::stod(m->body.substr(at + 18)), 2.0 * KVCache::kBlockSize * double(per_token)) << m->body;
  // Less than the draft's cache: an error that says so.
  CmdResult bad = run_camelid("serve " + args + " --kv-budget " + mib(100), true);
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("for the draft model's cache"), std::string::npos) << bad.out;
}
