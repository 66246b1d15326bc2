// The engine on the paged KV cache: requests sharing a system prompt map its blocks (and get what
// a cold run gives, bit for bit), a small budget makes requests wait instead of failing, cached
// blocks are evicted under pressure without changing a token, and memory follows the tokens held.
#include <gtest/gtest.h>

#include <future>
#include <mutex>

#include "core/error.h"
#include "fixtures.h"
#include "runtime/engine.h"
#include "model_runs.h"

using namespace camelid;
using camelid::test::tiny_llama2;

namespace {

constexpr int kBlock = KVCache::kBlockSize;

struct Flow {
  std::vector<int> ids;
  std::string finish;
  std::promise<void> done;
  std::promise<void> first;  // the first token arrived
  bool got_first = false;
};

std::shared_ptr<EngineRequest> request(const std::vector<int>& prompt, uint64_t seed, int max_tokens, Flow& run) {
  auto r = std::make_shared<EngineRequest>();
  r->prompt = prompt;
  r->max_tokens = max_tokens;
  r->sampling.temperature = 0.8f;
  r->sampling.top_k = 0;
  r->sampling.top_p = 0.95f;
  r->sampling.min_p = 0;
  r->sampling.seed = seed;
  r->on_token = [&run](int id) {
    run.ids.push_back(id);
    if (!run.got_first) run.got_first = true, run.first.set_value();
    return true;
  };
  r->on_finish = [&run](const std::string& reason, int, int) {
    run.finish = reason;
    if (!run.got_first) run.got_first = true, run.first.set_value();
    run.done.set_value();
  };
  return r;
}

std::vector<int> with_user(const std::vector<int>& system, int user, int n) {
  std::vector<int> p = system;
  for (int i = 0; i < n; ++i) p.push_back(200 + 17 * user + 3 * i);
  return p;
}

// One request alone in a fresh engine without the prefix cache: the reference.
std::vector<int> cold(const std::vector<int>& prompt, uint64_t seed, int max_tokens) {
  Engine e(tiny_llama2(), 1, 256, 256, false);
  Flow run;
  e.submit(request(prompt, seed, max_tokens, run));
  run.done.get_future().wait();
  return run.ids;
}

}  // namespace

// B arrives while A (same 3-block system prompt, another question) is still generating: B maps
// A's published blocks instead of computing them, and both give exactly their cold runs' tokens.
TEST(EnginePaged, ConcurrentRequestsShareASystemPromptsBlocks) {
  std::vector<int> system = {1};
  for (int i = 0; i < 3 * kBlock + 4; ++i) system.push_back(30 + 7 * i);
  const auto pa = with_user(system, 1, 5), pb = with_user(system, 2, 9);
  Engine e(tiny_llama2(), 2, 256);
  Flow a, b;
  auto ra = request(pa, 11, 40, a);
  ra->stop_ids.clear();
  e.submit(ra);
  a.first.get_future().wait();
  const EngineStats before = e.stats();
  e.submit(request(pb, 12, 10, b));
  b.done.get_future().wait();
  const EngineStats after = e.stats();
  a.done.get_future().wait();
  EXPECT_EQ(before.prefix_reused_tokens, 0);
  EXPECT_EQ(after.prefix_reused_tokens, 3 * kBlock) << "the system prompt's full blocks";
  EXPECT_EQ(after.prefill_tokens, long(pa.size() + pb.size()) - 3 * kBlock);
  EXPECT_EQ(a.finish, "length");
  EXPECT_EQ(a.ids, cold(pa, 11, 40));
  EXPECT_EQ(b.ids, cold(pb, 12, 10));
}

// Budget of 6 blocks, 3 slots: at most two requests of 3 blocks run at once, the others wait;
// prompts sharing a prefix map cached blocks, the others evict them. Every request gets its cold
// run's tokens, and the pool never passes its budget.
TEST(EnginePaged, SmallBudgetQueuesAndEvictsWithoutChangingTokens) {
  std::vector<int> system = {1};
  for (int i = 0; i < kBlock + 3; ++i) system.push_back(40 + 5 * i);
  std::vector<std::vector<int>> prompts;
  for (int i = 0; i < 8; ++i) {
    std::vector<int> base = system;
    if (i % 3 == 2) base[2] = 300 + i;  // not the shared prefix
    prompts.push_back(with_user(base, i, 4 + i % 3));
  }
  Engine e(tiny_llama2(), 3, 256, 256, true, true, 6 * kBlock);
  EXPECT_EQ(e.ctx(), 6 * kBlock);
  const int max_tokens = 3 * kBlock - 30;  // prompt + max_tokens <= 3 blocks
  std::vector<Flow> runs(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_LE(int(prompts[i].size()) + max_tokens, 3 * kBlock);
    auto r = request(prompts[i], 100 + i, max_tokens, runs[i]);
    r->stop_ids.clear();
    e.submit(r);
  }
  for (auto& r : runs) r.done.get_future().wait();
  const EngineStats st = e.stats();
  EXPECT_LE(st.kv_bytes, st.kv_budget_bytes);
  EXPECT_GT(st.prefix_reused_tokens, 0);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(runs[i].finish, "length") << i;
    EXPECT_EQ(runs[i].ids, cold(prompts[i], 100 + i, max_tokens)) << "request " << i;
  }
  // A long request now needs every block: the cached ones are evicted, the free slots' dropped.
  std::vector<int> big = with_user({1}, 9, 5 * kBlock);
  Flow run;
  auto r = request(big, 5, 6 * kBlock - int(big.size()), run);
  r->stop_ids.clear();
  e.submit(r);
  run.done.get_future().wait();
  EXPECT_EQ(run.finish, "length");
  EXPECT_EQ(run.ids, cold(big, 5, 6 * kBlock - int(big.size())));
  // A prompt longer than what the budget holds can never run: a clear error, at once.
  Flow never;
  EXPECT_THROW(e.submit(request(std::vector<int>(6 * kBlock, 5), 1, 1, never)), Error);
}

// --parallel no longer multiplies the context: 8 slots of 1024 positions hold only what their
// sequences store, in whole blocks.
TEST(EnginePaged, MemoryFollowsTheTokensHeld) {
  Engine e(tiny_llama2(), 8, 1024);
  const size_t per_token = KVCache::bytes_per_token(tiny_llama2().config(), tiny_llama2().kv_type());
  EXPECT_EQ(e.kv_budget_bytes(), 8 * 1024 * per_token);
  std::vector<Flow> runs(4);
  for (int i = 0; i < 4; ++i) e.submit(request(with_user({1}, i, 20), 7 + i, 12, runs[size_t(i)]));
  for (auto& r : runs) r.done.get_future().wait();
  const EngineStats st = e.stats();
  EXPECT_GT(st.kv_bytes, 0u);
  EXPECT_LE(st.kv_bytes, 4 * size_t(KVCache::blocks_for(21 + 12)) * kBlock * per_token);
  EXPECT_EQ(st.kv_cells_total, 8 * 1024);
}
