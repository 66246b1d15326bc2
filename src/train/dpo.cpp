#include "train/dpo.h"

#include <cmath>

#include "core/error.h"
#include "train/pref_batch.h"
#include "train/step_common.h"

namespace camelid::train {

using json = nlohmann::json;

DpoPairTerms dpo_pair_terms(double logp_c, double logp_r, double ref_c, double ref_r, double beta) {
  DpoPairTerms t;
  t.chosen_reward = beta * (logp_c - ref_c);
  t.rejected_reward = beta * (logp_r - ref_r);
  const double z = t.chosen_reward - t.rejected_reward;
  // -log sigmoid(z) = softplus(-z), and sigmoid(-z), both without overflow.
  t.loss = z > 0 ? std::log1p(std::exp(-z)) : -z + std::log1p(std::exp(z));
  const double s = z > 0 ? std::exp(-z) / (1 + std::exp(-z)) : 1 / (1 + std::exp(z));
  t.d_chosen = -beta * s;
  t.d_rejected = beta * s;
  return t;
}

namespace {
ParamSet config_only(const LoraTraining& lora) {  // LoRA mode's ParamSet: the base's config, no params
  ParamSet ps;
  if (lora.base) ps.config = lora.base->config;
  return ps;
}
}  // namespace

DpoTrainer::DpoTrainer(ParamSet ps, std::vector<PreferencePair> pairs, DpoOptions o)
    : DpoTrainer(std::move(ps), LoraTraining{}, std::move(pairs), std::move(o)) {}

DpoTrainer::DpoTrainer(LoraTraining lora, std::vector<PreferencePair> pairs, DpoOptions o)
    : DpoTrainer(config_only(lora), lora, std::move(pairs), std::move(o)) {}

DpoTrainer::DpoTrainer(ParamSet ps, LoraTraining lora, std::vector<PreferencePair> pairs, DpoOptions o)
    : PrefLoop(std::move(ps), std::move(lora), std::move(pairs), o), beta_(o.beta) {
  if (ps_.config.num_labels > 0) fail("dpo: the model is a reward model (it needs a language-model head)");
  check_counts();
  if (!(beta_ > 0) || !std::isfinite(beta_)) fail("--beta: must be a number > 0, got ", beta_);
  check_rest("dpo", "dpo runs in one process (data parallel DPO is not supported)", true);
  ready();
  // The frozen reference: the starting weights' log-probabilities of every pair (LoRA: the base's,
  // the adapter detached meanwhile).
  ref_c_.resize(pairs_.size()), ref_r_.resize(pairs_.size());
  view_->lora = nullptr;
  for (size_t i = 0; i < pairs_.size(); ++i) std::tie(ref_c_[i], ref_r_[i]) = logprobs(i);
  view_->lora = lora_.adapter;
}

std::pair<double, double> DpoTrainer::logprobs(size_t i) {
  const PairRows rows = pack_pairs(pairs_, {int64_t(i)}, true);
  no_dropout();
  model_.forward(*view_, rows.tokens.data(), rows.B, rows.T);
  const auto lp = row_logprobs(model_.logits(), rows.targets.data(), rows.B, rows.T, ps_.config.vocab_size);
  return {lp[0], lp[1]};
}

DpoStepLog DpoTrainer::compute_gradients(int64_t s) {
  const int P = po_.pairs_per_step(), V = ps_.config.vocab_size;
  trained().zero_grad();
  DpoStepLog l;
  l.step = s + 1;
  for (int m = 0; m < po_.grad_accum; ++m) {
    const std::vector<int64_t> which = micro_batch(s, m);
    PairRows rows = pack_pairs(pairs_, which, true);
    model_.forward(*view_, rows.tokens.data(), rows.B, rows.T);
    const auto lp = row_logprobs(model_.logits(), rows.targets.data(), rows.B, rows.T, V);
    std::vector<double> coef(size_t(rows.B));
    for (size_t k = 0; k < which.size(); ++k) {
      const size_t i = size_t(which[k]);
      const DpoPairTerms t = dpo_pair_terms(lp[2 * k], lp[2 * k + 1], ref_c_[i], ref_r_[i], beta_);
      l.loss += t.loss / P;
      l.chosen_reward += t.chosen_reward / P, l.rejected_reward += t.rejected_reward / P;
      l.accuracy += (t.chosen_reward > t.rejected_reward ? 1.0 : 0.0) / P;
      // The logits hold (softmax - onehot) = -d log pi / d logits.
      coef[2 * k] = -t.d_chosen / P, coef[2 * k + 1] = -t.d_rejected / P;
    }
    scale_rows(model_.logits(), coef, rows.B, rows.T, V);
    backward();
  }
  l.margin = l.chosen_reward - l.rejected_reward;
  return l;
}

DpoStepLog DpoTrainer::step() {
  const auto t0 = std::chrono::steady_clock::now();
  DpoStepLog l = compute_gradients(step_);
  finish_step(l, t0);
  return l;
}

json DpoTrainer::state_json() const {
  json j = base_state_json("camelid-dpo-state");
  j["method"] = "dpo";
  j["beta"] = beta_;
  return j;
}

void DpoTrainer::check_resumed_state(const json& st, const std::string& where) const {
  expect_state(st, where, "format", "camelid-dpo-state", "the command (dpo)");
  expect_state(st, where, "beta", beta_, "--beta");
}

bool DpoTrainer::run(const std::function<void(const DpoStepLog&)>& on_step, const std::function<bool()>& stop) {
  return run_logged(*this, on_step, stop);
}

}  // namespace camelid::train
