#pragma once
// Reward model: a Llama with a scalar head on the final hidden state of a sequence's last token
// (Hugging Face's LlamaForSequenceClassification, num_labels 1: score.weight [1, dim], no
// lm_head), trained on preference pairs with the Llama 2 paper's ranking loss with margin:
//   loss = -log sigmoid(r(x, y_c) - r(x, y_r) - m)
// (mean over the step's pairs; m from the pair's "margin", default 0). The gradient enters the
// model as dloss/dr * score.weight at the last token's final hidden state (LlamaTrain::backward's
// dhidden), and score.weight's own is dloss/dr * that hidden state.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "train/pref_loop.h"

namespace camelid::train {

// A reward model from a causal LM's parameters: lm_head dropped, config.num_labels = 1, and
// score.weight ~ N(0, init_std) from a seeded generator.
ParamSet reward_params_from_lm(ParamSet lm, uint64_t seed, float init_std = 0.02f);

// The reward of each sequence: score . (final hidden state at its last token). The model must be
// a reward model (config.num_labels == 1); any weight format LlamaTrain runs.
std::vector<double> reward_scores(LlamaTrain& m, const ModelWeights& rm, const std::vector<std::vector<int>>& seqs);

struct RewardOptions : PrefOptions {};

struct RewardStepLog : PrefStepLog {
  double chosen = 0, rejected = 0;  // means of r(chosen), r(rejected); margin: their difference
};

class RewardTrainer : public PrefLoop {
 public:
  RewardTrainer(ParamSet ps, std::vector<PreferencePair> pairs, RewardOptions o);
  RewardStepLog step();
  // The loss and statistics of optimizer step `s`'s pairs at the current weights, with their
  // gradients (before clipping) left in params(); step() is this, then clipping and AdamW.
  RewardStepLog compute_gradients(int64_t s);
  bool run(const std::function<void(const RewardStepLog&)>& on_step, const std::function<bool()>& stop = {});
  // r(chosen), r(rejected) of pair i now.
  std::pair<double, double> scores(size_t i);

 private:
  nlohmann::json state_json() const override;
  void check_resumed_state(const nlohmann::json& st, const std::string& where) const override;
};

}  // namespace camelid::train
