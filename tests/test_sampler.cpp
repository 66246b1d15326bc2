#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <random>
#include <set>

#include "core/error.h"
#include "runtime/sampler.h"

using namespace camelid;

namespace {

std::vector<float> logits_of(std::initializer_list<float> v) { return v; }

int draw(SamplingParams p, std::vector<float> lg, const std::vector<int>& hist = {}) {
  Sampler s(p);
  return s.sample(lg.data(), int(lg.size()), hist);
}

TEST(Sampler, GreedyPicksArgmax) {
  SamplingParams p;
  p.temperature = 0;
  EXPECT_EQ(draw(p, logits_of({0.1f, 3.f, 2.f, -1.f})), 1);
  EXPECT_EQ(draw(p, logits_of({5.f, 5.f, 1.f})), 0) << "ties go to the lowest id";
}

TEST(Sampler, SameSeedSameOutputDifferentSeedDiffers) {
  SamplingParams p;
  p.temperature = 1.5f, p.top_k = 0, p.top_p = 1, p.min_p = 0;
  std::vector<float> lg(100);
  for (int i = 0; i < 100; ++i) lg[i] = std::sin(float(i));
  auto seq = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p);
    std::vector<int> out;
    for (int i = 0; i < 50; ++i) {
      auto l = lg;
      out.push_back(s.sample(l.data(), 100, {}));
    }
    return out;
  };
  EXPECT_EQ(seq(7), seq(7));
  EXPECT_NE(seq(7), seq(8));
}

TEST(Sampler, TopKOneAndTinyTopPAreGreedy) {
  std::vector<float> lg = {0.5f, 0.1f, 2.0f, 1.9f};
  SamplingParams p;
  p.temperature = 1, p.top_k = 1, p.top_p = 1, p.min_p = 0;
  for (uint64_t s = 0; s < 20; ++s) {
    p.seed = s;
    EXPECT_EQ(draw(p, lg), 2);
  }
  p.top_k = 0, p.top_p = 0.01f;
  for (uint64_t s = 0; s < 20; ++s) {
    p.seed = s;
    EXPECT_EQ(draw(p, lg), 2);
  }
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  // p ~ {0.47, 0.47, 0.06}: min_p 0.2 keeps only the first two.
  std::vector<float> lg = {2.f, 2.f, 0.f};
  SamplingParams p;
  p.temperature = 1, p.top_k = 0, p.top_p = 1, p.min_p = 0.2f;
  for (uint64_t s = 0; s < 200; ++s) {
    p.seed = s;
    EXPECT_NE(draw(p, lg), 2);
  }
}

TEST(Sampler, TopKRestrictsToKBest) {
  std::vector<float> lg = {1.f, 3.f, 2.f, 2.5f, 0.f};
  SamplingParams p;
  p.temperature = 5, p.top_k = 2, p.top_p = 1, p.min_p = 0;
  for (uint64_t s = 0; s < 200; ++s) {
    p.seed = s;
    int id = draw(p, lg);
    EXPECT_TRUE(id == 1 || id == 3) << id;
  }
}

TEST(Sampler, FrequenciesFollowSoftmax) {
  std::vector<float> lg = {0.f, 1.f, 2.f};
  SamplingParams p;
  p.temperature = 1, p.top_k = 0, p.top_p = 1, p.min_p = 0, p.seed = 3;
  Sampler s(p);
  int count[3] = {0, 0, 0};
  const int N = 20000;
  for (int i = 0; i < N; ++i) {
    auto l = lg;
    ++count[s.sample(l.data(), 3, {})];
  }
  const double z = 1 + std::exp(1.0) + std::exp(2.0);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(count[i] / double(N), std::exp(double(i)) / z, 0.015);
}

TEST(Sampler, RepetitionPenaltyDiscouragesRecentTokens) {
  SamplingParams p;
  p.temperature = 0, p.repeat_penalty = 2.f;
  EXPECT_EQ(draw(p, logits_of({3.f, 2.f}), {0}), 1) << "3/2 < 2";
  EXPECT_EQ(draw(p, logits_of({-1.f, -1.5f}), {0}), 1) << "-1*2 < -1.5";
  p.repeat_last_n = 1;
  EXPECT_EQ(draw(p, logits_of({3.f, 2.f}), {0, 1}), 0) << "only the last token is penalized";
}

TEST(Sampler, RejectsBadParameters) {
  SamplingParams p;
  p.top_p = 0;
  EXPECT_THROW(Sampler{p}, Error);
  p = {};
  p.temperature = -1;
  EXPECT_THROW(Sampler{p}, Error);
  p = {};
  p.repeat_penalty = 0;
  EXPECT_THROW(Sampler{p}, Error);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesFollowOpenAI) {
  // Greedy on [3, 2.5, 0]: token 0 until its penalty, count * 0.3 + 0.2 after the 2nd pick,
  // pushes it below token 1 (3 - 2 * 0.3 - 0.2 = 2.2 < 2.5).
  SamplingParams p;
  p.temperature = 0, p.frequency_penalty = 0.3f, p.presence_penalty = 0.2f;
  Sampler s(p);
  std::vector<int> picks;
  for (int i = 0; i < 3; ++i) {
    std::vector<float> lg = {3.f, 2.5f, 0.f};
    picks.push_back(s.sample(lg.data(), 3, {}));
    if (i == 1) {
      EXPECT_FLOAT_EQ(lg[0], 3.f - 1 * 0.3f - 0.2f);  // before the 2nd pick: count 1
    }
  }
  EXPECT_EQ(picks, (std::vector<int>{0, 0, 1}));
  // The prompt does not count: a history full of token 0 changes nothing.
  Sampler fresh(p);
  std::vector<float> lg = {3.f, 2.5f, 0.f};
  EXPECT_EQ(fresh.sample(lg.data(), 3, {0, 0, 0, 0}), 0);
}

TEST(Sampler, LogitBiasAddsToLogits) {
  SamplingParams p;
  p.temperature = 0, p.logit_bias = {{2, 10.f}, {0, -100.f}, {99, 5.f}};  // 99: outside, ignored
  std::vector<float> lg = {3.f, 2.5f, 0.f};
  Sampler s(p);
  EXPECT_EQ(s.sample(lg.data(), 3, {}), 2);
  EXPECT_FLOAT_EQ(lg[0], -97.f);
  p.logit_bias = {{0, 101.f}};
  EXPECT_THROW(p.validate(), Error);
  p.logit_bias = {{-1, 1.f}};
  EXPECT_THROW(p.validate(), Error);
  p.logit_bias = {};
  p.presence_penalty = 2.5f;
  EXPECT_THROW(p.validate(), Error);
}

TEST(Sampler, TokenLogprobsAreLogSoftmax) {
  const std::vector<float> lg = {1.f, 3.f, 2.f, 3.f};
  TokenLogprob lp;
  token_logprobs(lg.data(), 4, 2, 3, lp);
  const double lse = std::log(std::exp(1.0) + 2 * std::exp(3.0) + std::exp(2.0));
  EXPECT_NEAR(lp.logprob, 2 - lse, 1e-6);
  ASSERT_EQ(lp.top.size(), 3u);
  EXPECT_EQ(lp.top[0].first, 1);  // ties by id
  EXPECT_EQ(lp.top[1].first, 3);
  EXPECT_EQ(lp.top[2].first, 2);
  EXPECT_NEAR(lp.top[0].second, 3 - lse, 1e-6);
  token_logprobs(lg.data(), 4, 0, 0, lp);
  EXPECT_TRUE(lp.top.empty());
}

TEST(Sampler, LogsumexpIsStable) {
  std::vector<float> x = {1000.f, 1000.f};
  EXPECT_NEAR(logsumexp(x.data(), 2), 1000 + std::log(2.0), 1e-9);
}

}  // namespace

namespace {

// The candidates as the definition reads: every token sorted by logit / temperature (ties by
// id), top-k, softmax, the smallest prefix whose mass reaches top-p, min-p against the first.
std::set<int> reference_candidates(const std::vector<float>& logits, const SamplingParams& p) {
  std::vector<std::pair<float, int>> v;
  for (size_t i = 0; i < logits.size(); ++i) v.emplace_back(logits[i] / p.temperature, int(i));
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  if (p.top_k > 0 && size_t(p.top_k) < v.size()) v.resize(size_t(p.top_k));
  double sum = 0;
  for (const auto& c : v) sum += std::exp(double(c.first) - double(v[0].first));
  std::set<int> out;
  double cum = 0;
  for (const auto& c : v) {
    const double q = std::exp(double(c.first) - double(v[0].first)) / sum;
    if (p.min_p > 0 && q < p.min_p / sum) break;  // the first token's probability is 1 / sum
    out.insert(c.second);
    if ((cum += q) >= p.top_p && p.top_p < 1) break;  // top_p 1: off
  }
  return out;
}

}  // namespace

// Without top-k the sampler selects top-p's prefix by mass instead of sorting the vocabulary:
// the same tokens, for peaked and flat logits, with ties, at several temperatures and sizes.
TEST(Sampler, CandidatesAreTheDefinitionsWithoutASort) {
  std::mt19937 rng(3);
  for (int n : {1, 7, 300, 5000, 40000})
    for (int shape = 0; shape < 3; ++shape)
      for (float top_p : {1.f, 0.95f, 0.5f, 0.01f})
        for (float min_p : {0.f, 0.05f})
          for (int top_k : {0, 40}) {
            std::normal_distribution<float> d(0.f, shape == 0 ? 2.f : 0.1f);
            std::vector<float> logits(static_cast<size_t>(n));
            for (float& x : logits) x = shape == 2 ? float(int(d(rng) * 20)) : d(rng);  // shape 2: many ties
            if (shape == 0)
              for (int i = 0; i < 10 && i < n; ++i) logits[rng() % n] += 12.f;
            SamplingParams p;
            p.temperature = n % 2 ? 0.7f : 1.3f, p.top_p = top_p, p.min_p = min_p, p.top_k = top_k, p.repeat_penalty = 1.f;
            Sampler s(p);
            std::vector<std::pair<float, int>> dist;
            std::vector<float> x = logits;
            s.distribution(x.data(), n, {}, dist);
            std::set<int> got;
            for (const auto& [w, id] : dist) got.insert(id);
            const std::set<int> want = reference_candidates(logits, p);
            // Rounding may move the last token of a prefix whose mass lands on top_p: a
            // difference of one token at most, at the edge.
            std::vector<int> diff;
            std::set_symmetric_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(diff));
            EXPECT_LE(diff.size(), 1u) << "n " << n << " shape " << shape << " top_p " << top_p << " min_p " << min_p
                                       << " top_k " << top_k << ": " << got.size() << " vs " << want.size();
            EXPECT_EQ(got.size(), dist.size());
          }
}
