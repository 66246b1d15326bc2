#include "train/dpo.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "train/distributed.h"
#include "train/pref_batch.h"

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

DpoTrainer::DpoTrainer(ParamSet ps, std::vector<PreferencePair> pairs, DpoOptions o)
    : ps_(std::move(ps)),
      pairs_(std::move(pairs)),
      o_(std::move(o)),
      opt_(ps_, o_.adamw),
      model_(ps_.config),
      order_(int64_t(pairs_.size()), o_.shuffle, o_.seed) {
  if (ps_.config.num_labels > 0) fail("dpo: the model is a reward model (it needs a language-model head)");
  if (o_.batch < 1) fail("--batch: must be >= 1, got ", o_.batch);
  if (o_.grad_accum < 1) fail("--grad-accum: must be >= 1, got ", o_.grad_accum);
  if (o_.steps < 1 || o_.steps > INT32_MAX) fail("--steps: must be in 1..2^31-1, got ", o_.steps);
  if (!(o_.beta > 0) || !std::isfinite(o_.beta)) fail("--beta: must be a number > 0, got ", o_.beta);
  if (!(o_.clip >= 0) || !std::isfinite(o_.clip)) fail("--clip: must be >= 0, got ", o_.clip);
  if (o_.save_every < 0) fail("--save-every: must be >= 0");
  if (pairs_.empty()) fail("dpo: no preference pairs");
  if (Comm::world().size() > 1) fail("dpo runs in one process (data parallel DPO is not supported)");
  for (const PreferencePair& p : pairs_)
    if (pair_row_length(p, true) > ps_.config.max_seq_len)
      fail("preference pair of line ", p.line, ": ", pair_row_length(p, true) + 1, " tokens exceed the model's context (",
           ps_.config.max_seq_len, " + 1)");
  o_.schedule.total = int(o_.steps);
  view_ = weights_view(ps_);
  // The frozen reference: the starting weights' log-probabilities of every pair.
  ref_c_.resize(pairs_.size()), ref_r_.resize(pairs_.size());
  for (size_t i = 0; i < pairs_.size(); ++i) std::tie(ref_c_[i], ref_r_[i]) = logprobs(i);
}

std::pair<double, double> DpoTrainer::logprobs(size_t i) {
  const PairRows rows = pack_pairs(pairs_, {int64_t(i)}, true);
  model_.forward(*view_, rows.tokens.data(), rows.B, rows.T);
  const auto lp = row_logprobs(model_.logits(), rows.targets.data(), rows.B, rows.T, ps_.config.vocab_size);
  return {lp[0], lp[1]};
}

DpoStepLog DpoTrainer::compute_gradients(int64_t s) {
  const int P = o_.pairs_per_step(), V = ps_.config.vocab_size;
  ps_.zero_grad();
  DpoStepLog l;
  l.step = s + 1;
  for (int m = 0; m < o_.grad_accum; ++m) {
    std::vector<int64_t> which;
    for (int b = 0; b < o_.batch; ++b) which.push_back(order_.at(s * P + int64_t(m) * o_.batch + b));
    PairRows rows = pack_pairs(pairs_, which, true);
    model_.forward(*view_, rows.tokens.data(), rows.B, rows.T);
    const auto lp = row_logprobs(model_.logits(), rows.targets.data(), rows.B, rows.T, V);
    std::vector<double> coef(size_t(rows.B));
    for (size_t k = 0; k < which.size(); ++k) {
      const size_t i = size_t(which[k]);
      const DpoPairTerms t = dpo_pair_terms(lp[2 * k], lp[2 * k + 1], ref_c_[i], ref_r_[i], o_.beta);
      l.loss += t.loss / P;
      l.chosen_reward += t.chosen_reward / P, l.rejected_reward += t.rejected_reward / P;
      l.accuracy += (t.chosen_reward > t.rejected_reward ? 1.0 : 0.0) / P;
      // The logits hold (softmax - onehot) = -d log pi / d logits.
      coef[2 * k] = -t.d_chosen / P, coef[2 * k + 1] = -t.d_rejected / P;
    }
    scale_rows(model_.logits(), coef, rows.B, rows.T, V);
    model_.backward(*view_, ps_);
  }
  l.margin = l.chosen_reward - l.rejected_reward;
  return l;
}

DpoStepLog DpoTrainer::step() {
  const auto t0 = std::chrono::steady_clock::now();
  DpoStepLog l = compute_gradients(step_);
  l.grad_norm = clip_grad_norm(ps_, o_.clip);
  if (!std::isfinite(l.loss) || !std::isfinite(l.grad_norm)) {
    const std::string kept = last_ckpt_.empty() ? "no checkpoint was written" : "last good checkpoint: " + last_ckpt_;
    fail("step ", l.step, ": loss ", l.loss, ", grad norm ", l.grad_norm,
         " is not finite; stopped before updating the weights (", kept, ")");
  }
  l.lr = o_.schedule.at(int(step_));
  opt_.step(ps_, l.lr);
  ++step_;
  l.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  curve_.emplace_back(double(l.step), l.loss);
  return l;
}

json DpoTrainer::state_json() const {
  const char* kinds[] = {"cosine", "constant"};
  json tr = json::array();
  for (auto [s, v] : curve_) tr.push_back({s, v});
  return {{"format", "camelid-dpo-state"},
          {"version", 1},
          {"method", "dpo"},
          {"step", step_},
          {"beta", o_.beta},
          {"seed", o_.seed},
          {"shuffle", o_.shuffle},
          {"batch", o_.batch},
          {"grad_accum", o_.grad_accum},
          {"pairs", pairs_.size()},
          {"schedule",
           {{"kind", kinds[int(o_.schedule.kind)]},
            {"lr", o_.schedule.lr},
            {"min_lr", o_.schedule.min_lr},
            {"warmup", o_.schedule.warmup},
            {"total", o_.schedule.total}}},
          {"optimizer",
           {{"type", "adamw"},
            {"beta1", o_.adamw.beta1},
            {"beta2", o_.adamw.beta2},
            {"eps", o_.adamw.eps},
            {"weight_decay", o_.adamw.weight_decay},
            {"clip", o_.clip},
            {"steps", opt_.steps()}}},
          {"history", {{"train", tr}, {"val", json::array()}}}};
}

std::string DpoTrainer::save() {
  if (o_.out_dir.empty()) return {};
  last_ckpt_ = save_checkpoint(o_.out_dir, step_, ps_, opt_, state_json(), o_.source);
  const std::string svg = (std::filesystem::path(o_.out_dir) / "loss.svg").string(), tmp = svg + ".tmp";
  try {
    write_file_durable(tmp, loss_svg(curve_, {}));
    std::filesystem::rename(tmp, svg);
  } catch (const std::exception&) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
  }
  return last_ckpt_;
}

bool DpoTrainer::run(const std::function<void(const DpoStepLog&)>& on_step, const std::function<bool()>& stop) {
  while (step_ < o_.steps) {
    const DpoStepLog l = step();
    if (on_step) on_step(l);
    if (stop && stop()) {
      save();
      return false;
    }
    if (step_ < o_.steps && o_.save_every > 0 && step_ % o_.save_every == 0) save();
  }
  save();
  return true;
}

}  // namespace camelid::train
