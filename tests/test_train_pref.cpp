// Preference tuning: the DPO and reward-model gradients against finite differences of a double
// reference (tests/ref_llama.h), training moves the margins the right way, the reward model's
// Hugging Face directory loads back and scores the same, and preference JSONL errors name the line.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "model/llama.h"
#include "grad_check.h"
#include "model_files.h"
#include "ref_llama.h"
#include "train/dpo.h"
#include "train/pref_batch.h"
#include "train/reward.h"

using namespace camelid;
using namespace camelid::train;
using camelid::test::expect_grad;
using camelid::test::RefLlama;
using camelid::test::Vec;

namespace {

ModelConfig tiny(bool tied) {
  ModelConfig c;
  c.vocab_size = 11, c.dim = 8, c.hidden_dim = 12, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 2;
  c.max_seq_len = 16, c.tied_embeddings = tied;
  return c;
}

ParamSet random_params(const ModelConfig& c, uint64_t seed) {
  ParamSet ps = params_init(c, seed, 0.5f);
  std::mt19937 rng(unsigned(seed) + 1);
  for (Param& p : ps.params)  // norms away from 1 so their gradients are exercised
    if (!p.decay)
      for (float& v : p.value) v = 1.f + 0.3f * std::normal_distribution<float>(0, 1)(rng);
  return ps;
}

// Different lengths (padding inside a micro-batch), one margin.
std::vector<PreferencePair> toy_pairs() {
  std::vector<PreferencePair> p(3);
  p[0].prompt = {1, 5, 6}, p[0].chosen = {7, 8, 2}, p[0].rejected = {9, 2};
  p[1].prompt = {1, 10}, p[1].chosen = {3, 4, 2}, p[1].rejected = {4, 3, 3, 2}, p[1].margin = 0.5;
  p[2].prompt = {1, 3, 4, 5}, p[2].chosen = {6, 2}, p[2].rejected = {8, 9, 2};
  return p;
}

std::vector<int> concat(const std::vector<int>& a, const std::vector<int>& b) {
  std::vector<int> r = a;
  r.insert(r.end(), b.begin(), b.end());
  return r;
}

double softplus_neg(double z) { return z > 0 ? std::log1p(std::exp(-z)) : -z + std::log1p(std::exp(z)); }

DpoOptions dpo_options(double lr) {
  DpoOptions o;
  o.batch = 2, o.steps = 50, o.beta = 0.7, o.shuffle = false, o.clip = 0;
  o.schedule.kind = LrSchedule::Kind::Constant, o.schedule.lr = lr;
  o.adamw.weight_decay = 0;
  return o;
}

class DpoGrad : public ::testing::TestWithParam<bool> {};

// Step 2's pairs (2, 0) after one step away from the reference, so z != 0.
TEST_P(DpoGrad, EveryParameterMatchesFiniteDifferences) {
  const ModelConfig c = tiny(GetParam());
  const auto pairs = toy_pairs();
  DpoTrainer t(random_params(c, 7), pairs, dpo_options(0.05));
  t.step();
  const DpoStepLog l = t.compute_gradients(1);
  const ParamSet& ps = t.params();
  RefLlama ref{ps};
  const double beta = 0.7;
  auto loss = [&](const std::string& name, const Vec& pv) {
    double s = 0;
    for (size_t i : {size_t(2), size_t(0)}) {
      const PreferencePair& p = pairs[i];
      const double lc = ref.seq_logprob(concat(p.prompt, p.chosen), p.prompt.size(), name, pv);
      const double lr = ref.seq_logprob(concat(p.prompt, p.rejected), p.prompt.size(), name, pv);
      const auto [rc, rr] = t.reference(i);
      s += softplus_neg(beta * ((lc - rc) - (lr - rr))) / 2;
    }
    return s;
  };
  EXPECT_NEAR(l.loss, loss("", {}), 1e-5);
  EXPECT_GT(std::fabs(l.margin), 1e-3);  // away from the reference
  for (const Param& p : ps.params) {
    const Vec v(p.value.begin(), p.value.end());
    expect_grad(p.name, [&](const Vec& pv) { return loss(p.name, pv); }, v, p.grad);
  }
}

INSTANTIATE_TEST_SUITE_P(Heads, DpoGrad, ::testing::Bool());

TEST(Dpo, PairTermsAreTheLossAndItsDerivatives) {
  const double beta = 0.3, lc = -4, lr = -6, rc = -5, rr = -5.5;
  const DpoPairTerms t = dpo_pair_terms(lc, lr, rc, rr, beta);
  auto f = [&](double a, double b) { return softplus_neg(beta * ((a - rc) - (b - rr))); };
  EXPECT_NEAR(t.loss, f(lc, lr), 1e-12);
  EXPECT_NEAR(t.d_chosen, (f(lc + 1e-6, lr) - f(lc - 1e-6, lr)) / 2e-6, 1e-8);
  EXPECT_NEAR(t.d_rejected, (f(lc, lr + 1e-6) - f(lc, lr - 1e-6)) / 2e-6, 1e-8);
  EXPECT_NEAR(t.chosen_reward, beta * (lc - rc), 1e-12);
  EXPECT_TRUE(std::isfinite(dpo_pair_terms(0, 0, 1e4, -1e4, 1).loss));  // no overflow far out
}

TEST(Dpo, TrainingRaisesTheChosenOverRejectedMargin) {
  ModelConfig c = tiny(false);
  c.vocab_size = 16, c.dim = 16, c.head_dim = 4;
  const auto pairs = toy_pairs();
  DpoOptions o = dpo_options(1e-2);
  o.beta = 0.1;
  DpoTrainer t(params_init(c, 3, 0.1f), pairs, o);
  auto margin = [&](size_t i) {
    const auto [lc, lr] = t.logprobs(i);
    const auto [rc, rr] = t.reference(i);
    return (lc - rc) - (lr - rr);
  };
  for (size_t i = 0; i < pairs.size(); ++i) EXPECT_NEAR(margin(i), 0, 1e-4);  // the policy is the reference
  double first = 0, last = 0;
  for (int s = 0; s < 15; ++s) {
    const DpoStepLog l = t.step();
    (s == 0 ? first : last) = l.loss;
  }
  EXPECT_LT(last, first);
  for (size_t i = 0; i < pairs.size(); ++i) EXPECT_GT(margin(i), 1.0) << "pair " << i;
}

RewardOptions reward_options(double lr) {
  RewardOptions o;
  o.batch = 2, o.steps = 50, o.shuffle = false, o.clip = 0;
  o.schedule.kind = LrSchedule::Kind::Constant, o.schedule.lr = lr;
  o.adamw.weight_decay = 0;
  return o;
}

class RewardGrad : public ::testing::TestWithParam<bool> {};

TEST_P(RewardGrad, HeadAndBackboneMatchFiniteDifferences) {
  const ModelConfig c = tiny(GetParam());
  const auto pairs = toy_pairs();
  RewardTrainer t(reward_params_from_lm(random_params(c, 9), 4, 0.5f), pairs, reward_options(0.01));
  const RewardStepLog l = t.compute_gradients(0);  // pairs 0 and 1 (margin 0.5)
  const ParamSet& ps = t.params();
  EXPECT_EQ(ps.find("lm_head.weight"), nullptr);
  ASSERT_NE(ps.find("score.weight"), nullptr);
  RefLlama ref{ps};
  auto loss = [&](const std::string& name, const Vec& pv) {
    double s = 0;
    for (size_t i : {size_t(0), size_t(1)}) {
      const PreferencePair& p = pairs[i];
      s += softplus_neg(ref.reward(concat(p.prompt, p.chosen), name, pv) - ref.reward(concat(p.prompt, p.rejected), name, pv) -
                        p.margin) / 2;
    }
    return s;
  };
  EXPECT_NEAR(l.loss, loss("", {}), 1e-5);
  for (const Param& p : ps.params) {
    const Vec v(p.value.begin(), p.value.end());
    expect_grad(p.name, [&](const Vec& pv) { return loss(p.name, pv); }, v, p.grad);
  }
}

INSTANTIATE_TEST_SUITE_P(Heads, RewardGrad, ::testing::Bool());

TEST(Reward, TrainingRanksChosenAboveRejectedAndTheDirectoryLoadsBack) {
  ModelConfig c = tiny(false);
  c.vocab_size = 16, c.dim = 16, c.head_dim = 4;
  const auto pairs = toy_pairs();
  test::TempDir d;
  RewardOptions o = reward_options(5e-3);
  o.steps = 30, o.out_dir = d / "out";
  RewardTrainer t(reward_params_from_lm(params_init(c, 5, 0.1f), 11), pairs, o);
  ASSERT_TRUE(t.run(nullptr));
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto [rc, rr] = t.scores(i);
    EXPECT_GT(rc, rr + pairs[i].margin) << "pair " << i;
  }
  // The checkpoint is a LlamaForSequenceClassification that camelid loads for scoring.
  const std::string dir = t.last_checkpoint();
  const std::string cfg = test::read_file(dir + "/config.json");
  EXPECT_NE(cfg.find("LlamaForSequenceClassification"), std::string::npos) << cfg;
  EXPECT_NE(cfg.find("\"id2label\""), std::string::npos) << cfg;
  std::shared_ptr<ModelWeights> w = load_model(dir);
  EXPECT_EQ(w->config.num_labels, 1);
  const ParamSet back = params_from_weights(*w);
  ASSERT_EQ(back.params.size(), t.params().params.size());
  for (size_t k = 0; k < back.params.size(); ++k) {
    EXPECT_EQ(back.params[k].name, t.params().params[k].name);
    EXPECT_EQ(back.params[k].value, t.params().params[k].value) << back.params[k].name;
  }
  LlamaTrain m(w->config);
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto s = reward_scores(m, *w, {concat(pairs[i].prompt, pairs[i].chosen), concat(pairs[i].prompt, pairs[i].rejected)});
    const auto [rc, rr] = t.scores(i);
    EXPECT_NEAR(s[0], rc, 1e-5);
    EXPECT_NEAR(s[1], rr, 1e-5);
  }
  // It scores but does not generate; a causal LM is not a reward model.
  test::expect_error([&] { Llama llama(w); }, {"reward model"});
  auto lm = std::make_shared<ModelWeights>();
  test::expect_error([&] { reward_scores(m, *weights_view(params_init(c, 1)), {{1, 2}}); }, {"not a reward model"});
}

TEST(Reward, ConfigAcceptsOneLabelOnly) {
  const std::string base = R"("vocab_size": 16, "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 1,
                              "num_attention_heads": 2)";
  EXPECT_EQ(parse_hf_config("{\"architectures\": [\"LlamaForSequenceClassification\"], \"id2label\": {\"0\": \"A\"}, " +
                                base + "}", "c").num_labels, 1);
  EXPECT_EQ(parse_hf_config("{\"architectures\": [\"LlamaForSequenceClassification\"], \"num_labels\": 1, " + base + "}",
                            "c").num_labels, 1);
  EXPECT_EQ(parse_hf_config("{" + base + "}", "c").num_labels, 0);
  test::expect_error([&] {
    parse_hf_config("{\"architectures\": [\"LlamaForSequenceClassification\"], \"id2label\": {\"0\": \"A\", \"1\": \"B\"}, " +
                    base + "}", "c");
  }, {"c", "2 labels"});
  test::expect_error([&] { parse_hf_config("{\"architectures\": [\"LlamaForTokenClassification\"], " + base + "}", "c"); },
                     {"unsupported architecture"});
}

TEST(PreferenceData, ParsesIdsAndNamesTheLineOfEveryError) {
  PreferenceEncoder enc;
  const auto p = parse_preferences("\n{\"prompt_ids\":[1,2],\"chosen_ids\":[3],\"rejected_ids\":[4,5],\"margin\":1.5}\n",
                                   "p.jsonl", enc, 8);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].line, 2);
  EXPECT_EQ(p[0].rejected, (std::vector<int>{4, 5}));
  EXPECT_EQ(p[0].margin, 1.5);
  const std::string ok = "{\"prompt_ids\":[1],\"chosen_ids\":[3],\"rejected_ids\":[4]}\n";
  test::expect_error([&] { parse_preferences(ok + "{\"prompt_ids\":[1],", "p.jsonl", enc, 8); }, {"p.jsonl:2"});
  test::expect_error([&] { parse_preferences(ok + ok + "{\"prompt_ids\":[1],\"chosen_ids\":[9],\"rejected_ids\":[4]}",
                                             "p.jsonl", enc, 8); }, {"p.jsonl:3", "chosen_ids"});
  test::expect_error([&] { parse_preferences("{\"prompt_ids\":[1],\"chosen_ids\":[],\"rejected_ids\":[4]}", "p.jsonl", enc, 8); },
                     {"p.jsonl:1", "empty"});
  test::expect_error([&] { parse_preferences("{\"prompt\":\"hi\",\"chosen\":\"a\",\"rejected\":\"b\"}", "p.jsonl", enc, 8); },
                     {"p.jsonl:1", "tokenizer"});
  test::expect_error([&] { parse_preferences("\n \n", "p.jsonl", enc, 8); }, {"p.jsonl", "no preference pairs"});
  test::expect_error([&] { parse_preferences(ok.substr(0, ok.size() - 2) + ",\"margin\":\"x\"}", "p.jsonl", enc, 8); },
                     {"margin"});
}

// Padding after a sequence changes nothing at its positions (attention is causal).
TEST(PreferenceData, PackedRowsMatchEachSequenceAlone) {
  const ModelConfig c = tiny(false);
  const ParamSet ps = random_params(c, 2);
  auto w = weights_view(ps);
  const auto pairs = toy_pairs();
  PairRows rows = pack_pairs(pairs, {0, 1}, true);
  ASSERT_EQ(rows.B, 4);
  LlamaTrain m(c);
  m.forward(*w, rows.tokens.data(), rows.B, rows.T);
  const auto packed = row_logprobs(m.logits(), rows.targets.data(), rows.B, rows.T, c.vocab_size);
  RefLlama ref{ps};
  for (int k = 0; k < 4; ++k) {
    const PreferencePair& p = pairs[size_t(k / 2)];
    EXPECT_NEAR(packed[size_t(k)], ref.seq_logprob(concat(p.prompt, k % 2 ? p.rejected : p.chosen), p.prompt.size(), "", {}),
                1e-4) << k;
  }
}

}  // namespace
