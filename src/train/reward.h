#pragma once
// Reward model: a Llama with a scalar head on the final hidden state of a sequence's last token
// (Hugging Face's LlamaForSequenceClassification, num_labels 1: score.weight [1, dim], no
// lm_head), trained on preference pairs with the Llama 2 paper's ranking loss with margin:
//   loss = -log sigmoid(r(x, y_c) - r(x, y_r) - m)
// (mean over the step's pairs; m from the pair's "margin", default 0). The gradient enters the
// model as dloss/dr * score.weight at the last token's final hidden state (LlamaTrain::backward's
// dhidden), and score.weight's own is dloss/dr * that hidden state.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/llama_train.h"
#include "model/params.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/loss_plot.h"
#include "train/lr_schedule.h"
#include "train/preference_data.h"

namespace camelid::train {

// A reward model from a causal LM's parameters: lm_head dropped, config.num_labels = 1, and
// score.weight ~ N(0, init_std) from a seeded generator.
ParamSet reward_params_from_lm(ParamSet lm, uint64_t seed, float init_std = 0.02f);

// The reward of each sequence: score . (final hidden state at its last token). The model must be
// a reward model (config.num_labels == 1); any weight format LlamaTrain runs.
std::vector<double> reward_scores(LlamaTrain& m, const ModelWeights& rm, const std::vector<std::vector<int>>& seqs);

struct RewardOptions {
  int batch = 2;            // pairs per micro-batch (2 rows each)
  int grad_accum = 1;
  int64_t steps = 100;
  LrSchedule schedule;
  AdamWConfig adamw;
  double clip = 1.0;
  bool shuffle = true;
  uint64_t seed = 1234;
  int64_t save_every = 0;
  std::string out_dir;
  CheckpointSource source;
  int pairs_per_step() const { return batch * grad_accum; }
};

struct RewardStepLog {
  int64_t step = 0;
  double loss = 0, lr = 0;
  float grad_norm = 0;
  double accuracy = 0;                   // fraction of pairs with r(chosen) > r(rejected)
  double chosen = 0, rejected = 0, margin = 0;  // means of r(chosen), r(rejected) and their difference
  double seconds = 0;
};

class RewardTrainer {
 public:
  RewardTrainer(ParamSet ps, std::vector<PreferencePair> pairs, RewardOptions o);
  RewardStepLog step();
  // The loss and statistics of optimizer step `s`'s pairs at the current weights, with their
  // gradients (before clipping) left in params(); step() is this, then clipping and AdamW.
  RewardStepLog compute_gradients(int64_t s);
  std::string save();
  bool run(const std::function<void(const RewardStepLog&)>& on_step, const std::function<bool()>& stop = {});
  // r(chosen), r(rejected) of pair i now.
  std::pair<double, double> scores(size_t i);
  int64_t steps_done() const { return step_; }
  const ParamSet& params() const { return ps_; }
  const std::string& last_checkpoint() const { return last_ckpt_; }

 private:
  nlohmann::json state_json() const;
  ParamSet ps_;
  std::vector<PreferencePair> pairs_;
  RewardOptions o_;
  AdamW opt_;
  LlamaTrain model_;
  std::shared_ptr<ModelWeights> view_;
  WindowOrder order_;
  int64_t step_ = 0;
  Curve curve_;
  std::string last_ckpt_;
};

}  // namespace camelid::train
