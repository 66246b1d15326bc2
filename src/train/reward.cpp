#include "train/reward.h"

#include <cmath>
#include <random>

#include "core/error.h"
#include "train/pref_batch.h"
#include "train/step_common.h"

namespace camelid::train {

using json = nlohmann::json;

ParamSet reward_params_from_lm(ParamSet lm, uint64_t seed, float init_std) {
  if (lm.config.num_labels > 0) return lm;  // already one
  ParamSet rm;
  rm.config = lm.config;
  rm.config.num_labels = 1;
  for (Param& p : lm.params)
    if (p.name != "lm_head.weight") rm.params.push_back(std::move(p));
  Param s;
  s.name = "score.weight", s.rows = 1, s.cols = lm.config.dim, s.decay = true;
  s.value.resize(s.numel()), s.grad.resize(s.numel());
  // Box-Muller over a fixed engine, as params_init (the same seed gives the same head everywhere).
  std::mt19937_64 rng(seed);
  auto uniform = [&] { return (double(rng() >> 11) + 0.5) * 0x1.0p-53; };
  for (size_t i = 0; i < s.value.size(); i += 2) {
    const double r = std::sqrt(-2.0 * std::log(uniform())), a = 2.0 * M_PI * uniform();
    s.value[i] = float(init_std * r * std::cos(a));
    if (i + 1 < s.value.size()) s.value[i + 1] = float(init_std * r * std::sin(a));
  }
  rm.params.push_back(std::move(s));
  return rm;
}

namespace {

std::vector<float> score_row(const ModelWeights& rm) {
  if (rm.config.num_labels != 1 || !rm.score.data)
    fail(rm.source, ": not a reward model (expected LlamaForSequenceClassification with score.weight [1, hidden])");
  std::vector<float> w(size_t(rm.config.dim));
  to_f32(rm.score.dtype, rm.score.row(0), w.data(), w.size());
  return w;
}

double dot_hidden(const float* h, const std::vector<float>& w) {
  double s = 0;
  for (size_t i = 0; i < w.size(); ++i) s += double(h[i]) * w[i];
  return s;
}

}  // namespace

std::vector<double> reward_scores(LlamaTrain& m, const ModelWeights& rm, const std::vector<std::vector<int>>& seqs) {
  const std::vector<float> w = score_row(rm);
  std::vector<double> out;
  for (const auto& s : seqs) {
    if (s.empty()) fail("reward: an empty sequence has no last token to score");
    m.forward(rm, s.data(), 1, int(s.size()));
    out.push_back(dot_hidden(m.hidden() + (s.size() - 1) * w.size(), w));
  }
  return out;
}

RewardTrainer::RewardTrainer(ParamSet ps, std::vector<PreferencePair> pairs, RewardOptions o)
    : PrefLoop(std::move(ps), LoraTraining{}, std::move(pairs), o) {
  if (ps_.config.num_labels != 1) fail("train-reward: the model has no score head");
  check_counts();
  check_rest("train-reward", "train-reward runs in one process (data parallel is not supported)", false);
  ready();
}

std::pair<double, double> RewardTrainer::scores(size_t i) {
  const PreferencePair& p = pairs_.at(i);
  std::vector<int> c = p.prompt, r = p.prompt;
  c.insert(c.end(), p.chosen.begin(), p.chosen.end());
  r.insert(r.end(), p.rejected.begin(), p.rejected.end());
  no_dropout();
  const auto s = reward_scores(model_, *view_, {c, r});
  return {s[0], s[1]};
}

RewardStepLog RewardTrainer::compute_gradients(int64_t s) {
  const int P = po_.pairs_per_step(), D = ps_.config.dim;
  ps_.zero_grad();
  Param& head = ps_.at("score.weight");
  RewardStepLog l;
  l.step = s + 1;
  std::vector<float> dhidden;
  for (int m = 0; m < po_.grad_accum; ++m) {
    const std::vector<int64_t> which = micro_batch(s, m);
    const PairRows rows = pack_pairs(pairs_, which, false);
    model_.forward(*view_, rows.tokens.data(), rows.B, rows.T);
    const float* h = model_.hidden();
    dhidden.assign(size_t(rows.B) * rows.T * D, 0.f);
    for (size_t k = 0; k < which.size(); ++k) {
      const PreferencePair& p = pairs_[size_t(which[k])];
      const float* hc = h + (size_t(2 * k) * rows.T + size_t(rows.last[2 * k])) * D;
      const float* hr = h + (size_t(2 * k + 1) * rows.T + size_t(rows.last[2 * k + 1])) * D;
      const double rc = dot_hidden(hc, head.value), rr = dot_hidden(hr, head.value);
      const double z = rc - rr - p.margin;
      l.loss += (z > 0 ? std::log1p(std::exp(-z)) : -z + std::log1p(std::exp(z))) / P;
      const double s = z > 0 ? std::exp(-z) / (1 + std::exp(-z)) : 1 / (1 + std::exp(z));  // sigmoid(-z)
      const double dc = -s / P, dr = s / P;  // dloss/dr(chosen), dloss/dr(rejected)
      l.chosen += rc / P, l.rejected += rr / P, l.accuracy += (rc > rr ? 1.0 : 0.0) / P;
      float* gc = &dhidden[(size_t(2 * k) * rows.T + size_t(rows.last[2 * k])) * D];
      float* gr = &dhidden[(size_t(2 * k + 1) * rows.T + size_t(rows.last[2 * k + 1])) * D];
      for (int i = 0; i < D; ++i) {
        gc[i] = float(dc * head.value[size_t(i)]), gr[i] = float(dr * head.value[size_t(i)]);
        head.grad[size_t(i)] += float(dc * hc[i] + dr * hr[i]);
      }
    }
    backward(dhidden.data());
  }
  l.margin = l.chosen - l.rejected;
  return l;
}

RewardStepLog RewardTrainer::step() {
  const auto t0 = std::chrono::steady_clock::now();
  RewardStepLog l = compute_gradients(step_);
  finish_step(l, t0);
  return l;
}

json RewardTrainer::state_json() const { return base_state_json("camelid-reward-state"); }

void RewardTrainer::check_resumed_state(const json& st, const std::string& where) const {
  expect_state(st, where, "format", "camelid-reward-state", "the command (train-reward)");
}

bool RewardTrainer::run(const std::function<void(const RewardStepLog&)>& on_step, const std::function<bool()>& stop) {
  return run_logged(*this, on_step, stop);
}

}  // namespace camelid::train
