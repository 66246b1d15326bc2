// Speculative decoding: greedy output identical to plain decoding, sampled output with the same
// distribution, for prompt-lookup and draft-model guesses.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "core/error.h"
#include "fixtures.h"
#include "speculative_models.h"
#include "model/random_model.h"
#include "runtime/speculative.h"

using namespace camelid;

namespace {

using test::other_draft;
using test::repetitive_prompt;
using test::target;

GenerateResult plain(const std::vector<int>& prompt, const GenerateOptions& opt) {
  Session s(target(), 128);
  return generate(s, prompt, opt);
}

GenerateResult speculative(const std::vector<int>& prompt, const GenerateOptions& opt, Llama* draft,
                           SpeculativeStats* st = nullptr) {
  Session s(target(), 128);
  SpeculativeOptions spec;
  spec.draft_model = draft;
  spec.max_draft = 5;
  return generate_speculative(s, prompt, opt, spec, st);
}

}  // namespace

TEST(Speculative, PromptLookupFindsTheLatestContinuation) {
  EXPECT_EQ(prompt_lookup_draft({5, 6, 7, 1, 5, 6, 9, 2, 5, 6}, 3, 1, 4), (std::vector<int>{9, 2, 5, 6}));
  EXPECT_EQ(prompt_lookup_draft({1, 2, 3, 4}, 3, 1, 4), std::vector<int>{});
  EXPECT_EQ(prompt_lookup_draft({8, 1, 2, 8}, 3, 1, 2), (std::vector<int>{1, 2}));
}

// Guess further while guesses are kept, less far after a rejection; pause 1, 2, 4 .. 16 steps
// after single guesses fail, and start over once one is kept.
TEST(Speculative, DraftPaceBacksOffFromFailingGuesses) {
  DraftPace p(8);
  EXPECT_EQ(p.take(), 8);
  p.update(3, 8);  // a rejection: one less
  EXPECT_EQ(p.take(), 7);
  p.update(7, 7);  // all kept: two more, at most 8
  EXPECT_EQ(p.take(), 8);
  for (int i = 0; i < 7; ++i) p.update(0, p.take());
  EXPECT_EQ(p.take(), 1);
  std::vector<int> pauses;
  for (int round = 0; round < 6; ++round) {
    p.update(0, 1);  // a single guess rejected: plain steps, then one guess again
    int plain = 0;
    while (p.take() == 0) ++plain;
    pauses.push_back(plain);
  }
  EXPECT_EQ(pauses, (std::vector<int>{1, 2, 4, 8, 16, 16}));
  p.update(1, 1);  // kept: no pause, further next time
  EXPECT_EQ(p.take(), 3);
  p.update(0, 3);
  p.update(0, 2);
  p.update(0, 1);
  EXPECT_EQ(p.take(), 0);  // the back-off starts again from one step
  EXPECT_EQ(p.take(), 1);
}

TEST(Speculative, GreedyOutputIsPlainDecodingTokenForToken) {
  GenerateOptions opt;
  opt.max_new_tokens = 40;
  opt.sampling.temperature = 0;
  opt.stop_at_eos = false;
  long drafted_lookup = 0, accepted_self = 0;
  for (int salt = 0; salt < 4; ++salt) {
    const auto prompt = repetitive_prompt(salt);
    const GenerateResult want = plain(prompt, opt);
    SpeculativeStats a, b, c;
    EXPECT_EQ(speculative(prompt, opt, nullptr, &a).ids, want.ids) << "prompt lookup, prompt " << salt;
    EXPECT_EQ(speculative(prompt, opt, &target(), &b).ids, want.ids) << "itself as draft, prompt " << salt;
    EXPECT_EQ(speculative(prompt, opt, &other_draft(), &c).ids, want.ids) << "another draft, prompt " << salt;
    drafted_lookup += a.drafted, accepted_self += b.accepted;
    EXPECT_EQ(b.accepted, b.drafted) << "a model agrees with itself";
    EXPECT_LT(b.steps, 40 / 4);
  }
  EXPECT_GT(drafted_lookup, 0) << "the repeated prompt gives prompt lookup something to guess";
  EXPECT_GT(accepted_self, 0);
}

TEST(Speculative, LimitsAndErrors) {
  GenerateOptions opt;
  opt.max_new_tokens = 7;
  opt.sampling.temperature = 0;
  opt.stop_at_eos = false;
  EXPECT_EQ(speculative(repetitive_prompt(1), opt, &target()).ids.size(), 7u);
  // The context ends generation as in plain decoding.
  Session s(target(), 30), s2(target(), 30);
  opt.max_new_tokens = 100;
  SpeculativeOptions spec;
  EXPECT_EQ(generate_speculative(s, repetitive_prompt(2), opt, spec).ids, generate(s2, repetitive_prompt(2), opt).ids);
  spec.max_draft = 0;
  EXPECT_THROW(generate_speculative(s, {1, 2}, opt, spec), Error);
}

// Sampling: the joint law of the first three tokens is the same (total variation distance over
// 3000 draws each way, with a draft that is often wrong, so rejections and residual draws happen).
TEST(Speculative, SampledOutputHasTheSameDistribution) {
  GenerateOptions opt;
  opt.max_new_tokens = 3;
  opt.stop_at_eos = false;
  opt.sampling.temperature = 1.0f;
  opt.sampling.top_k = 4;
  opt.sampling.top_p = 1.0f;
  opt.sampling.min_p = 0;
  const std::vector<int> prompt = {1, 450, 451, 452};
  const int N = 3000;
  uint64_t seed_shift = 0;
  auto histogram = [&](Llama* draft, bool spec) {
    seed_shift += 1000003;  // independent draws each time
    std::map<std::vector<int>, int> h;
    for (int i = 0; i < N; ++i) {
      opt.sampling.seed = uint64_t(i) * 7919 + 1 + seed_shift;
      ++h[spec ? speculative(prompt, opt, draft).ids : plain(prompt, opt).ids];
    }
    return h;
  };
  auto tv = [&](const std::map<std::vector<int>, int>& a, const std::map<std::vector<int>, int>& b) {
    std::map<std::vector<int>, int> all = a;
    for (auto& [k, v] : b) all[k] += 0;
    double d = 0;
    for (auto& [k, v] : all) {
      const double pa = a.count(k) ? a.at(k) : 0, pb = b.count(k) ? b.at(k) : 0;
      d += std::abs(pa - pb) / N;
    }
    return d / 2;
  };
  const auto base = histogram(nullptr, false);
  // 64 outcomes at most: sampling noise alone gives a distance around 0.05.
  // Plain sampling with other seeds lands at 0.048 from `base` (measured once; not run here).
  const double other = tv(base, histogram(&other_draft(), true));
  EXPECT_LT(other, 0.09);
  std::printf("total variation from plain sampling with a draft that is often wrong: %.3f\n", other);
}
