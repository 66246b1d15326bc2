#pragma once
// Direct Preference Optimization (Rafailov et al. 2023) over preference pairs. Per pair, with
// log-probabilities summed over the response tokens only:
//   z = beta * ((log pi(c) - log pi_ref(c)) - (log pi(r) - log pi_ref(r)))
//   loss = -log sigmoid(z)
// The reference pi_ref is the starting model, frozen: its log-probabilities of every pair are
// computed once, before the first step, by the same forward (no second copy of the model is
// kept). The step's loss is the mean over its pairs; the gradient reaches the logits as
// dloss/dlog pi(seq) * (onehot - softmax) per response token, with
//   dloss/dlog pi(c) = -beta * sigmoid(-z) / P,   dloss/dlog pi(r) = +beta * sigmoid(-z) / P.
// Clipping, AdamW, schedule and checkpoints are the pretraining loop's (train/adamw.h,
// train/checkpoint.h); the policy is fully fine-tuned.
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

struct DpoOptions {
  int batch = 2;            // pairs per micro-batch (2 rows each)
  int grad_accum = 1;       // micro-batches per optimizer step
  int64_t steps = 100;
  double beta = 0.1;
  LrSchedule schedule;      // its `total` is set to steps
  AdamWConfig adamw;
  double clip = 1.0;        // max global grad norm; 0 = none
  bool shuffle = true;      // else step s takes pairs (s*P + i) mod n, P = batch x grad_accum
  uint64_t seed = 1234;
  int64_t save_every = 0;   // steps between checkpoints (0: only at the end)
  std::string out_dir;      // empty: no checkpoints
  CheckpointSource source;
  int pairs_per_step() const { return batch * grad_accum; }
};

struct DpoStepLog {
  int64_t step = 0;
  double loss = 0, lr = 0;
  float grad_norm = 0;
  double accuracy = 0;                        // fraction of pairs with chosen reward > rejected reward
  double chosen_reward = 0, rejected_reward = 0, margin = 0;  // means of beta*(log pi - log pi_ref)
  double seconds = 0;
};

// One pair's loss and its derivatives with respect to log pi(c) and log pi(r) (not divided by P).
struct DpoPairTerms {
  double loss, d_chosen, d_rejected, chosen_reward, rejected_reward;
};
DpoPairTerms dpo_pair_terms(double logp_c, double logp_r, double ref_c, double ref_r, double beta);

class DpoTrainer {
 public:
  // ps: the policy, which is also the reference (its log-probabilities are taken here, once).
  DpoTrainer(ParamSet ps, std::vector<PreferencePair> pairs, DpoOptions o);

  DpoStepLog step();
  // The loss and statistics of optimizer step `s`'s pairs at the current weights, with their
  // gradients (before clipping) left in params(); step() is this, then clipping and AdamW.
  DpoStepLog compute_gradients(int64_t s);
  std::string save();
  bool run(const std::function<void(const DpoStepLog&)>& on_step, const std::function<bool()>& stop = {});

  // The policy's summed response log-probabilities of pair i (chosen, rejected), now.
  std::pair<double, double> logprobs(size_t i);
  std::pair<double, double> reference(size_t i) const { return {ref_c_[i], ref_r_[i]}; }

  int64_t steps_done() const { return step_; }
  const ParamSet& params() const { return ps_; }
  const std::string& last_checkpoint() const { return last_ckpt_; }

 private:
  nlohmann::json state_json() const;

  ParamSet ps_;
  std::vector<PreferencePair> pairs_;
  DpoOptions o_;
  AdamW opt_;
  LlamaTrain model_;
  std::shared_ptr<ModelWeights> view_;
  WindowOrder order_;
  std::vector<double> ref_c_, ref_r_;
  int64_t step_ = 0;
  Curve curve_;
  std::string last_ckpt_;
};

}  // namespace camelid::train
