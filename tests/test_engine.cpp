// Continuous batching: concurrent requests give exactly what each gives alone.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "core/error.h"
#include "fixtures.h"
#include "kernels/kernels.h"
#include "runtime/engine.h"
#include "model_runs.h"

using namespace camelid;
using camelid::test::tiny_llama2;

namespace {

struct Result {
  std::vector<int> ids;
  std::string finish;
  int prompt_tokens = 0, completion_tokens = 0;
};

std::shared_ptr<EngineRequest> make_request(std::vector<int> prompt, uint64_t seed, int max_tokens,
                                            std::promise<Result>& done, Result& acc) {
  auto r = std::make_shared<EngineRequest>();
  r->prompt = std::move(prompt);
  r->max_tokens = max_tokens;
  r->sampling.temperature = 0.9f;
  r->sampling.top_k = 0;
  r->sampling.top_p = 0.95f;
  r->sampling.min_p = 0;
  r->sampling.seed = seed;
  r->stop_ids = {2};
  r->on_token = [&acc](int id) { acc.ids.push_back(id); return true; };
  r->on_finish = [&acc, &done](const std::string& reason, int p, int c) {
    acc.finish = reason, acc.prompt_tokens = p, acc.completion_tokens = c;
    done.set_value(acc);
  };
  return r;
}

std::vector<int> prompt_for(int i) {
  std::vector<int> p = {1};
  for (int k = 0; k < 3 + 5 * i % 17; ++k) p.push_back(100 + 37 * i + 11 * k);
  return p;
}

void expect_concurrent_runs_match_sequential(Llama& m) {
  const int N = 16;
  std::vector<Result> alone(N);
  {
    Engine e(m, 1, 128);
    for (int i = 0; i < N; ++i) {
      std::promise<Result> done;
      Result acc;
      e.submit(make_request(prompt_for(i), 1000 + i, 12 + i % 5, done, acc));
      alone[i] = done.get_future().get();
    }
  }
  Engine e(m, N, 128);
  std::vector<std::promise<Result>> done(N);
  std::vector<Result> acc(N);
  for (int i = 0; i < N; ++i) e.submit(make_request(prompt_for(i), 1000 + i, 12 + i % 5, done[i], acc[i]));
  for (int i = 0; i < N; ++i) {
    Result r = done[i].get_future().get();
    EXPECT_EQ(r.ids, alone[i].ids) << "request " << i;
    EXPECT_EQ(r.finish, alone[i].finish);
    EXPECT_EQ(r.prompt_tokens, int(prompt_for(i).size()));
    EXPECT_EQ(r.completion_tokens, int(r.ids.size()));
  }
  auto st = e.stats();
  EXPECT_GT(st.decode_rows, st.steps) << "decode steps really were batched";
}

TEST(Engine, ConcurrentRequestsMatchSequentialRuns) { expect_concurrent_runs_match_sequential(tiny_llama2()); }

// With bf16 weights multiplied in bf16 (bf16 dot, the default where the CPU has it), batching must
// not change any token either.
TEST(Engine, ConcurrentRequestsMatchSequentialRunsWithBf16Dot) {
  if (!kernels::bf16_dot_supported()) GTEST_SKIP() << "CPU lacks AVX512-BF16";
  Llama m(std::shared_ptr<const ModelWeights>(load_model(test::fixture("models/tiny-llama3"))));
  ASSERT_EQ(m.weights().main_dtype(), DType::BF16);
  const bool saved = kernels::bf16_dot_active();
  kernels::set_bf16_dot(true);
  expect_concurrent_runs_match_sequential(m);
  kernels::set_bf16_dot(saved);
}

TEST(Engine, MoreRequestsThanSlotsQueue) {
  Engine e(tiny_llama2(), 2, 64);
  const int N = 6;
  std::vector<std::promise<Result>> done(N);
  std::vector<Result> acc(N);
  for (int i = 0; i < N; ++i) e.submit(make_request(prompt_for(i), i, 5, done[i], acc[i]));
  for (int i = 0; i < N; ++i) {
    Result r = done[i].get_future().get();
    EXPECT_TRUE(r.finish == "length" || r.finish == "stop") << r.finish;
  }
}

TEST(Engine, CancelFreesTheSlot) {
  Engine e(tiny_llama2(), 1, 256);
  std::promise<Result> d1, d2;
  Result a1, a2;
  auto r1 = make_request({1, 5, 6}, 1, 200, d1, a1);
  r1->on_token = [&a1, r = r1.get()](int id) {
    a1.ids.push_back(id);
    if (a1.ids.size() == 3) r->cancelled = true;
    return true;
  };
  r1->stop_ids.clear();
  e.submit(r1);
  e.submit(make_request({1, 7}, 2, 4, d2, a2));
  EXPECT_EQ(d1.get_future().get().finish, "cancelled");
  EXPECT_LE(a1.ids.size(), 4u);
  Result r2 = d2.get_future().get();
  EXPECT_EQ(r2.completion_tokens, int(r2.ids.size()));
  EXPECT_EQ(r2.finish, "length");
}

TEST(Engine, LengthLimitAndBadPrompts) {
  Engine e(tiny_llama2(), 1, 16);
  std::promise<Result> d;
  Result a;
  auto r = make_request({1, 5, 6}, 1, 100, d, a);
  r->stop_ids.clear();
  e.submit(r);
  Result got = d.get_future().get();
  EXPECT_EQ(got.finish, "length");
  EXPECT_EQ(int(got.ids.size()) + 3, 16 + 1) << "fills the context: the last token needs no slot";
  std::promise<Result> d2;
  Result a2;
  EXPECT_THROW(e.submit(make_request(std::vector<int>(16, 5), 1, 1, d2, a2)), Error);
  EXPECT_THROW(e.submit(make_request({}, 1, 1, d2, a2)), Error);
  EXPECT_THROW(e.submit(make_request({1, 40000}, 1, 1, d2, a2)), Error);
}

}  // namespace

namespace {

// A chat's turns through one engine: each prompt is the previous prompt, the reply and a new
// user message. Returns every turn's tokens and the engine's stats.
std::vector<std::vector<int>> chat_turns(Llama& m, bool prefix_cache, EngineStats* stats) {
  Engine e(m, 2, 256, 256, prefix_cache);
  std::vector<std::vector<int>> replies;
  std::vector<int> prompt = {1, 300, 301, 302, 303, 304};
  for (int turn = 0; turn < 5; ++turn) {
    std::promise<Result> done;
    Result acc;
    e.submit(make_request(prompt, 50 + turn, 6, done, acc));
    Result r = done.get_future().get();
    replies.push_back(r.ids);
    prompt.insert(prompt.end(), r.ids.begin(), r.ids.end());
    for (int k = 0; k < 4; ++k) prompt.push_back(400 + 13 * turn + k);
  }
  *stats = e.stats();
  return replies;
}

}  // namespace

// The prefix cache computes only what a turn adds, and changes no token (f32 and f16 caches).
TEST(Engine, PrefixCacheReusesTurnsAndChangesNothing) {
  for (DType kv : {DType::F32, DType::F16}) {
    Llama m(std::shared_ptr<const ModelWeights>(load_model(test::fixture("models/tiny-llama2"))));
    m.set_kv_type(kv);
    EngineStats with, without;
    const auto a = chat_turns(m, true, &with), b = chat_turns(m, false, &without);
    EXPECT_EQ(a, b) << dtype_name(kv);
    EXPECT_EQ(without.prefix_reused_tokens, 0);
    EXPECT_GT(with.prefix_reused_tokens, 40) << "turns 2-5 reuse the whole previous conversation";
    EXPECT_LT(with.prefill_tokens, without.prefill_tokens / 2);
  }
}

// Another request in between takes the other slot: the chat's slot keeps its prefix.
TEST(Engine, PrefixCachePicksTheSlotWithTheLongestPrefix) {
  Engine e(tiny_llama2(), 2, 128);
  auto run = [&](std::vector<int> p, uint64_t seed) {
    std::promise<Result> done;
    Result acc;
    e.submit(make_request(std::move(p), seed, 3, done, acc));
    return done.get_future().get();
  };
  const std::vector<int> chat = {1, 10, 11, 12, 13, 14, 15, 16, 17};
  run(chat, 1);
  run({1, 90, 91, 92, 93}, 2);  // free slots: the empty one
  const long before = e.stats().prefix_reused_tokens;
  std::vector<int> next = chat;
  next.push_back(18);
  run(next, 3);
  EXPECT_EQ(e.stats().prefix_reused_tokens - before, long(chat.size()));
}

namespace {

// A decodes; when its first token arrives, B's long prompt is submitted. Returns how many of A's
// tokens arrived after B was submitted and before B's first token, and both results.
int tokens_during_prefill(bool interleave, Result* a_out, Result* b_out, int chunk = 0) {
  Engine e(tiny_llama2(), 2, 256, 16, true, interleave, 0, chunk);
  std::promise<Result> da, db;
  Result a, b;
  std::vector<int> long_prompt = {1};
  for (int k = 0; k < 180; ++k) long_prompt.push_back(200 + (k * 7) % 300);
  auto rb = make_request(long_prompt, 8, 4, db, b);
  std::atomic<bool> b_submitted{false}, b_started{false};
  std::atomic<int> during{0};
  rb->on_token = [&b, &b_started](int id) {
    b.ids.push_back(id);
    b_started = true;
    return true;
  };
  auto ra = make_request({1, 20, 21, 22}, 7, 60, da, a);
  ra->stop_ids.clear();
  ra->on_token = [&](int id) {
    a.ids.push_back(id);
    if (!b_submitted.exchange(true)) e.submit(rb);
    else if (!b_started) ++during;
    return true;
  };
  e.submit(ra);
  *a_out = da.get_future().get();
  *b_out = db.get_future().get();
  return during;
}

}  // namespace

// A long prompt is prefilled in chunks between the decode steps of others, and that changes
// no token of either.
TEST(Engine, ChunkedPrefillKeepsOthersDecodingAndChangesNothing) {
  Result a1, b1, a2, b2;
  const int chunked = tokens_during_prefill(true, &a1, &b1);
  const int whole = tokens_during_prefill(false, &a2, &b2);
  EXPECT_GE(chunked, 10) << "180 prompt tokens in chunks of at most 16 take 12+ steps";
  EXPECT_LE(whole, 1);
  EXPECT_EQ(a1.ids, a2.ids);
  EXPECT_EQ(b1.ids, b2.ids);
  EXPECT_EQ(a1.ids.size(), 60u);
  // A smaller chunk (serve --prefill-chunk) takes more steps, and still changes nothing.
  Result a3, b3;
  EXPECT_GE(tokens_during_prefill(true, &a3, &b3, 4), 40) << "180 prompt tokens, 4 a step: 45 steps";
  EXPECT_EQ(a3.ids, a1.ids);
  EXPECT_EQ(b3.ids, b1.ids);
}
