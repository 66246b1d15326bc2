// generate --best-of N --reward RM: with a reward model crafted so that its score depends only on
// the last token (every layer's matrices zero: the final hidden state is the normed embedding of
// the last token) and prefers one token, the chosen completion is the highest-scoring of the N,
// and each score equals scoring that sequence on its own.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "cli_runner.h"
#include "model/llama_train.h"
#include "model/params.h"
#include "model_files.h"
#include "train/checkpoint.h"
#include "train/reward.h"

using namespace camelid;
using namespace camelid::test;

TEST(CliBestOf, ChoosesTheHighestRewardAndScoresMatchScoringAlone) {
  TempDir d;
  write_random_model(d / "m", small_spec());
  // The crafted reward model.
  auto lm = load_model(d / "m");
  ParamSet ps = train::reward_params_from_lm(params_from_weights(*lm), 1);
  for (Param& p : ps.params)
    if (p.decay && p.name.starts_with("model.layers.")) std::fill(p.value.begin(), p.value.end(), 0.f);
  const int D = ps.config.dim, preferred = 7;
  const Param& emb = ps.at("model.embed_tokens.weight");
  Param& score = ps.at("score.weight");
  for (int i = 0; i < D; ++i) score.value[size_t(i)] = emb.value[size_t(preferred) * D + i];
  const std::string rm = train::save_checkpoint(d / "rm", 0, ps, train::AdamW(ps, {}), nlohmann::json::object(), {});
  // Its score of a sequence: score . (norm ⊙ rmsnorm(embed[last])).
  auto analytic = [&](int last) {
    const float* e = &emb.value[size_t(last) * D];
    double ss = 0;
    for (int i = 0; i < D; ++i) ss += double(e[i]) * e[i];
    const double r = 1 / std::sqrt(ss / D + ps.config.norm_eps);
    double s = 0;
    for (int i = 0; i < D; ++i) s += double(score.value[size_t(i)]) * ps.at("model.norm.weight").value[size_t(i)] * e[i] * r;
    return s;
  };

  const int N = 6;
  auto r = run_camelid("generate -m " + q(d / "m") + " --ids 1,5,6 -n 4 --temp 2 -s 3 --best-of " + std::to_string(N) +
                       " --reward " + q(rm) + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["completions"].size(), size_t(N));
  EXPECT_EQ(j["best_of"], N);
  auto w = load_model(rm);
  ASSERT_EQ(w->config.num_labels, 1);
  LlamaTrain scorer(w->config);
  size_t argmax = 0;
  std::set<std::vector<int>> distinct;
  for (size_t i = 0; i < size_t(N); ++i) {
    const auto& c = j["completions"][i];
    EXPECT_EQ(c["seed"], 3 + i);
    std::vector<int> seq = {1, 5, 6};
    for (int id : c["ids"]) seq.push_back(id);
    distinct.insert(seq);
    const double alone = train::reward_scores(scorer, *w, {seq})[0];
    EXPECT_NEAR(double(c["score"]), alone, 1e-6 * std::max(1.0, std::fabs(alone))) << i;
    EXPECT_NEAR(alone, analytic(seq.back()), 1e-4 * std::max(1.0, std::fabs(alone))) << i;
    if (double(c["score"]) > double(j["completions"][argmax]["score"])) argmax = i;
  }
  EXPECT_GT(distinct.size(), 1u);  // different seeds, different samples
  EXPECT_EQ(j["chosen"], argmax);
  EXPECT_EQ(j["ids"], j["completions"][argmax]["ids"]);
  EXPECT_EQ(j["score"], j["completions"][argmax]["score"]);

  // Plain output names the chosen one; the flags go together; a causal LM is not a reward model.
  r = run_camelid("generate -m " + q(d / "m") + " --ids 1,5,6 -n 4 --temp 2 -s 3 --best-of 2 --reward " + q(rm), true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("[best of 2: completion"), std::string::npos) << r.out;
  r = run_camelid("generate -m " + q(d / "m") + " --ids 1,5 -n 2 --best-of 2", true);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("go together"), std::string::npos) << r.out;
  r = run_camelid("generate -m " + q(d / "m") + " --ids 1,5 -n 2 --best-of 2 --reward " + q(d / "m"), true);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("not a reward model"), std::string::npos) << r.out;
}
