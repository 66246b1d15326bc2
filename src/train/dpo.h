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
// train/checkpoint.h). The policy is the whole model, or a LoRA adapter over the frozen model
// (any format, quantized GGUF included); then the reference is the model without the adapter,
// so no second copy of the weights is needed either.
#include <string>
#include <utility>
#include <vector>

#include "train/pref_loop.h"

namespace camelid::train {

struct DpoOptions : PrefOptions {
  double beta = 0.1;
};

struct DpoStepLog : PrefStepLog {
  double chosen_reward = 0, rejected_reward = 0;  // means of beta*(log pi - log pi_ref); margin: their difference
};

// One pair's loss and its derivatives with respect to log pi(c) and log pi(r) (not divided by P).
struct DpoPairTerms {
  double loss, d_chosen, d_rejected, chosen_reward, rejected_reward;
};
DpoPairTerms dpo_pair_terms(double logp_c, double logp_r, double ref_c, double ref_r, double beta);

class DpoTrainer : public PrefLoop {
 public:
  // ps: the policy, which is also the reference (its log-probabilities are taken here, once).
  DpoTrainer(ParamSet ps, std::vector<PreferencePair> pairs, DpoOptions o);
  // LoRA: the adapter over lora.base is trained; the reference is lora.base alone.
  DpoTrainer(LoraTraining lora, std::vector<PreferencePair> pairs, DpoOptions o);

  DpoStepLog step();
  // The loss and statistics of optimizer step `s`'s pairs at the current weights, with their
  // gradients (before clipping) left in params(); step() is this, then clipping and AdamW.
  DpoStepLog compute_gradients(int64_t s);
  bool run(const std::function<void(const DpoStepLog&)>& on_step, const std::function<bool()>& stop = {});

  // The policy's summed response log-probabilities of pair i (chosen, rejected), now.
  std::pair<double, double> logprobs(size_t i);  // (no dropout)
  std::pair<double, double> reference(size_t i) const { return {ref_c_[i], ref_r_[i]}; }

 private:
  DpoTrainer(ParamSet ps, LoraTraining lora, std::vector<PreferencePair> pairs, DpoOptions o);
  nlohmann::json state_json() const override;
  void check_resumed_state(const nlohmann::json& st, const std::string& where) const override;

  double beta_;
  std::vector<double> ref_c_, ref_r_;
};

}  // namespace camelid::train
