// Speculative decoding inside the engine's batched steps, with several slots: greedy output
// identical to plain decoding for every concurrent request (prompt lookup and draft models), a
// sampled request's tokens independent of what runs beside it, and the plain-decoding rules
// (stop ids, max_tokens, the context, callbacks that stop, logprobs, logit_bias) kept.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <future>

#include "core/error.h"
#include "fixtures.h"
#include "speculative_models.h"
#include "model/random_model.h"
#include "runtime/engine.h"
#include "runtime/speculative.h"

using namespace camelid;

namespace {

using test::other_draft;
using test::repetitive_prompt;
using test::target;

struct Spec {  // a request to run
  std::vector<int> prompt;
  int max_tokens = 32;
  float temperature = 0;
  int top_k = 0;
  uint64_t seed = 7;
  int top_logprobs = -1;
  int stop_after = -1;  // on_token returns false at this token (as a stop string does)
  std::vector<std::pair<int, float>> logit_bias;
};

struct SpecResult {
  std::vector<int> ids;
  std::vector<int> logprob_ids;
  std::string finish;
  int prompt_tokens = 0, completion_tokens = 0;
};

std::shared_ptr<EngineRequest> make_request(const Spec& sp, std::promise<SpecResult>& done, SpecResult& acc) {
  auto r = std::make_shared<EngineRequest>();
  r->prompt = sp.prompt;
  r->max_tokens = sp.max_tokens;
  r->sampling.temperature = sp.temperature;
  r->sampling.top_k = sp.top_k;
  r->sampling.top_p = 0.95f;
  r->sampling.min_p = 0;
  r->sampling.seed = sp.seed;
  r->sampling.logit_bias = sp.logit_bias;
  r->stop_ids = {2};
  r->top_logprobs = sp.top_logprobs;
  if (sp.top_logprobs >= 0) r->on_logprob = [&acc](const TokenLogprob& lp) { acc.logprob_ids.push_back(lp.id); };
  const int stop_after = sp.stop_after;
  r->on_token = [&acc, stop_after](int id) {
    acc.ids.push_back(id);
    return int(acc.ids.size()) != stop_after;
  };
  r->on_finish = [&acc, &done](const std::string& reason, int p, int c) {
    acc.finish = reason, acc.prompt_tokens = p, acc.completion_tokens = c;
    done.set_value(acc);
  };
  return r;
}

// Submits every request at once to an engine of n_slots (speculating with `spec` when given).
std::vector<SpecResult> run(const std::vector<Spec>& reqs, int n_slots, const SpeculativeOptions* spec,
                        SpeculativeStats* stats = nullptr, int ctx = 256) {
  Engine e(target(), n_slots, ctx);
  if (spec) e.enable_speculative(*spec);
  std::vector<std::promise<SpecResult>> done(reqs.size());
  std::vector<SpecResult> acc(reqs.size()), out;
  for (size_t i = 0; i < reqs.size(); ++i) e.submit(make_request(reqs[i], done[i], acc[i]));
  for (auto& d : done) out.push_back(d.get_future().get());
  if (stats) *stats = e.speculative_stats();
  return out;
}

// Greedy requests of every kind: long and short, a callback that stops, logprobs (decoded
// plainly), a logit bias, more requests than slots (queued, slots and draft caches reused).
std::vector<Spec> greedy_mix() {
  std::vector<Spec> v;
  for (int i = 0; i < 6; ++i) {
    Spec s;
    s.prompt = repetitive_prompt(i % 4);  // the same prompt twice: the caches' prefixes are reused
    s.max_tokens = 20 + 7 * i;
    v.push_back(s);
  }
  v[1].stop_after = 9;
  v[2].top_logprobs = 2;
  v[3].logit_bias = {{target().config().vocab_size - 5, 40.f}};  // forces a token the guesses never hold
  v[5].prompt.push_back(300);
  Spec longer;  // admitted while others decode: prefilled (and fed to a draft) in chunks
  for (int rep = 0; rep < 7; ++rep) longer.prompt.insert(longer.prompt.end(), v[4].prompt.begin(), v[4].prompt.end());
  longer.max_tokens = 40;
  v.push_back(longer);
  return v;
}

void expect_same(const std::vector<SpecResult>& got, const std::vector<SpecResult>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].ids, want[i].ids) << what << ", request " << i;
    EXPECT_EQ(got[i].logprob_ids, want[i].logprob_ids) << what << ", request " << i;
    EXPECT_EQ(got[i].finish, want[i].finish) << what << ", request " << i;
    EXPECT_EQ(got[i].prompt_tokens, want[i].prompt_tokens) << what << ", request " << i;
    EXPECT_EQ(got[i].completion_tokens, want[i].completion_tokens) << what << ", request " << i;
    EXPECT_EQ(got[i].completion_tokens, int(got[i].ids.size())) << what << ", request " << i;
  }
}

}  // namespace

TEST(EngineSpeculative, FourSlotsGreedyLookupEqualsPlainDecoding) {
  const std::vector<Spec> reqs = greedy_mix();
  const std::vector<SpecResult> plain = run(reqs, 4, nullptr);
  EXPECT_EQ(plain[1].finish, "stop");
  EXPECT_EQ(plain[1].ids.size(), 9u);
  EXPECT_EQ(plain[2].logprob_ids, plain[2].ids);
  EXPECT_EQ(plain[3].ids.front(), target().config().vocab_size - 5);
  SpeculativeOptions lookup;
  lookup.max_draft = 6;
  SpeculativeStats st;
  expect_same(run(reqs, 4, &lookup, &st), plain, "lookup, 4 slots");
  EXPECT_GT(st.drafted, 0);
  EXPECT_GT(st.accepted, 0);
  EXPECT_LE(st.accepted, st.drafted);
  // One slot, and guesses up to the longest allowed: the same again.
  lookup.max_draft = 64;
  expect_same(run(reqs, 1, &lookup), plain, "lookup, 1 slot");
}

TEST(EngineSpeculative, FourSlotsGreedyDraftModelEqualsPlainDecoding) {
  const std::vector<Spec> reqs = greedy_mix();
  const std::vector<SpecResult> plain = run(reqs, 4, nullptr);
  SpeculativeOptions self;  // the model as its own draft: every greedy guess is right
  self.draft_model = &target();
  self.max_draft = 4;
  SpeculativeStats st;
  expect_same(run(reqs, 4, &self, &st), plain, "self draft");
  EXPECT_GT(st.accepted, 0);
  // Its cache then holds exactly what the model's does (prompts fed in chunks, rejected positions
  // dropped): every guess is the model's own choice, kept, unless the request ended amid them.
  std::vector<Spec> unstopped = reqs;
  unstopped.erase(unstopped.begin() + 1);
  expect_same(run(unstopped, 4, &self, &st), run(unstopped, 4, nullptr), "self draft");
  EXPECT_EQ(st.accepted, st.drafted);
  SpeculativeOptions other;  // mostly wrong guesses: rejections
  other.draft_model = &other_draft();
  other.max_draft = 3;
  expect_same(run(reqs, 4, &other, &st), plain, "other draft");
  EXPECT_GT(st.drafted, st.accepted);
}

TEST(EngineSpeculative, ContextLimitEndsAsPlainDecoding) {
  std::vector<Spec> reqs(3);
  for (int i = 0; i < 3; ++i) reqs[size_t(i)].prompt = repetitive_prompt(i), reqs[size_t(i)].max_tokens = 200;
  const std::vector<SpecResult> plain = run(reqs, 3, nullptr, nullptr, 48);
  EXPECT_EQ(plain[0].finish, "length");
  SpeculativeOptions lookup;
  expect_same(run(reqs, 3, &lookup, nullptr, 48), plain, "lookup at the context's end");
  SpeculativeOptions draft;
  draft.draft_model = &target();
  expect_same(run(reqs, 3, &draft, nullptr, 48), plain, "draft at the context's end");
}

TEST(EngineSpeculative, SampledRequestIgnoresItsNeighbours) {
  Spec mine;
  mine.prompt = repetitive_prompt(0);
  mine.temperature = 0.8f;
  mine.top_k = 50;  // sorting a whole vocabulary per row would only slow the test
  mine.seed = 42;
  mine.max_tokens = 40;
  std::vector<Spec> crowd = {mine};
  for (int i = 1; i < 6; ++i) {
    Spec s;
    s.prompt = repetitive_prompt(i);
    s.temperature = i % 2 ? 0.9f : 0.f;
    s.top_k = 50;
    s.seed = 100 + uint64_t(i);
    s.max_tokens = 10 + 9 * i;
    crowd.push_back(s);
  }
  SpeculativeOptions lookup;
  SpeculativeOptions draft;
  draft.draft_model = &other_draft();
  draft.max_draft = 3;
  for (const SpeculativeOptions* so : {&lookup, &draft}) {
    const SpecResult alone = run({mine}, 4, so)[0];
    ASSERT_FALSE(alone.ids.empty());
    SpeculativeStats st;
    const SpecResult beside = run(crowd, 4, so, &st)[0];
    EXPECT_EQ(beside.ids, alone.ids) << (so->draft_model ? "draft" : "lookup");
    EXPECT_EQ(beside.finish, alone.finish);
    EXPECT_GT(st.drafted, 0);
  }
}

// Sampled requests, run concurrently in the engine, give the very tokens generate_speculative()
// gives each alone (same seeds, same guesses, same draws): the engine's speculative sampling is
// the one whose law test_speculative checks against plain sampling.
TEST(EngineSpeculative, SampledOutputIsGenerateSpeculativesForEachRequest) {
  std::vector<Spec> reqs;
  for (int i = 0; i < 5; ++i) {
    Spec s;
    s.prompt = repetitive_prompt(i);
    s.temperature = 0.7f + 0.1f * float(i % 3);
    s.top_k = 50;
    s.seed = 900 + uint64_t(i);
    s.max_tokens = 24 + 5 * i;
    reqs.push_back(s);
  }
  SpeculativeOptions lookup;
  lookup.max_draft = 5;
  SpeculativeOptions draft;
  draft.draft_model = &other_draft();
  draft.max_draft = 3;
  for (const SpeculativeOptions* so : {&lookup, &draft}) {
    const std::vector<SpecResult> got = run(reqs, 4, so);
    for (size_t i = 0; i < reqs.size(); ++i) {
      GenerateOptions opt;
      opt.max_new_tokens = reqs[i].max_tokens;
      opt.sampling.temperature = reqs[i].temperature;
      opt.sampling.top_k = reqs[i].top_k;
      opt.sampling.top_p = 0.95f;
      opt.sampling.min_p = 0;
      opt.sampling.seed = reqs[i].seed;
      EXPECT_FALSE(got[i].ids.empty());
      Session session(target(), 256);
      EXPECT_EQ(got[i].ids, generate_speculative(session, reqs[i].prompt, opt, *so).ids)
          << (so->draft_model ? "draft" : "lookup") << ", request " << i;
    }
  }
}

// The KV positions a speculative run keeps (and publishes to the prefix cache) hold exactly its
// tokens: a follow-up prompt that starts with prompt + output maps them (here through the prefix
// cache's published blocks, another request having used the slot since) and continues exactly as
// plain decoding computing everything.
TEST(EngineSpeculative, FollowUpReusesOnlyKeptPositions) {
  Spec first;
  first.prompt = repetitive_prompt(1);
  first.max_tokens = 70;
  Spec other;
  other.prompt = {7, 8, 9};  // no token in common: the slot gives all of its blocks back to the cache
  other.max_tokens = 3;
  SpeculativeOptions lookup;
  SpeculativeOptions draft;
  draft.draft_model = &other_draft();
  draft.max_draft = 3;
  for (const SpeculativeOptions* so : {&lookup, &draft}) {
    Engine e(target(), 1, 256);
    e.enable_speculative(*so);
    auto one = [&](const Spec& sp) {
      std::promise<SpecResult> done;
      SpecResult acc;
      e.submit(make_request(sp, done, acc));
      return done.get_future().get();
    };
    const SpecResult a = one(first);
    ASSERT_EQ(a.ids.size(), 70u);
    one(other);  // the slot now holds other tokens: the follow-up maps published blocks
    Spec follow;
    follow.prompt = first.prompt;
    follow.prompt.insert(follow.prompt.end(), a.ids.begin(), a.ids.end());
    follow.prompt.push_back(300);
    const SpecResult got = one(follow);
    EXPECT_GE(e.stats().prefix_reused_tokens, 80);
    EXPECT_EQ(got.ids, run({follow}, 1, nullptr)[0].ids) << (so->draft_model ? "draft" : "lookup");
  }
}

TEST(EngineSpeculative, BadOptionsAreRefused) {
  Engine e(target(), 2, 64);
  SpeculativeOptions so;
  so.max_draft = 0;
  EXPECT_THROW(e.enable_speculative(so), Error);
  so.max_draft = 65;
  EXPECT_THROW(e.enable_speculative(so), Error);
  so.max_draft = 4;
  so.ngram_min = 0;
  EXPECT_THROW(e.enable_speculative(so), Error);
}
