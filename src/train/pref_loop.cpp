#include "train/pref_loop.h"

#include <cmath>

#include "core/error.h"
#include "train/distributed.h"
#include "train/pref_batch.h"
#include "train/step_common.h"

namespace camelid::train {

using json = nlohmann::json;

PrefLoop::PrefLoop(ParamSet ps, LoraTraining lora, std::vector<PreferencePair> pairs, const PrefOptions& o)
    : ps_(std::move(ps)),
      lora_(std::move(lora)),
      pairs_(std::move(pairs)),
      po_(o),
      opt_(trained(), po_.adamw),
      model_(ps_.config),
      order_(int64_t(pairs_.size()), po_.shuffle, po_.seed) {
  if (lora_.adapter && !lora_.base) fail("LoRA training without a base model");
  if (lora_.adapter)
    for (const Param& p : lora_.adapter->params.params)
      if (!p.trainable || p.grad.size() != p.value.size()) fail("LoRA parameter ", p.name, " has no gradient buffer");
}

void PrefLoop::check_counts() const {
  if (po_.batch < 1) fail("--batch: must be >= 1, got ", po_.batch);
  if (po_.grad_accum < 1) fail("--grad-accum: must be >= 1, got ", po_.grad_accum);
  if (po_.steps < 1 || po_.steps > INT32_MAX) fail("--steps: must be in 1..2^31-1, got ", po_.steps);
}

void PrefLoop::check_rest(const char* what, const char* one_process, bool lm_rows) const {
  if (!(po_.clip >= 0) || !std::isfinite(po_.clip)) fail("--clip: must be >= 0, got ", po_.clip);
  if (po_.save_every < 0) fail("--save-every: must be >= 0");
  if (pairs_.empty()) fail(what, ": no preference pairs");
  if (Comm::world().size() > 1) fail(one_process);
  const int extra = lm_rows ? 1 : 0;  // the shifted target
  for (const PreferencePair& p : pairs_)
    if (pair_row_length(p, lm_rows) > ps_.config.max_seq_len)
      fail("preference pair of line ", p.line, ": ", pair_row_length(p, lm_rows) + extra,
           " tokens exceed the model's context (", ps_.config.max_seq_len, lm_rows ? " + 1)" : ")");
}

void PrefLoop::ready() {
  po_.schedule.total = int(po_.steps);
  if (lora_.adapter) {
    lora_.base->lora = lora_.adapter;
    view_ = lora_.base;
  } else {
    view_ = weights_view(ps_);
  }
}

void PrefLoop::backward(const float* dhidden) {
  if (lora_.adapter) model_.backward_lora(*view_, *lora_.adapter, dhidden);
  else model_.backward(*view_, ps_, dhidden);
}

std::vector<int64_t> PrefLoop::micro_batch(int64_t s, int m) {
  const int P = po_.pairs_per_step();
  std::vector<int64_t> which;
  const int64_t first = s * P + int64_t(m) * po_.batch;
  for (int b = 0; b < po_.batch; ++b) which.push_back(order_.at(first + b));
  model_.set_dropout(true, mix64(po_.seed ^ mix64(uint64_t(first))));
  return which;
}

void PrefLoop::finish_step(PrefStepLog& l, std::chrono::steady_clock::time_point t0) {
  const StepUpdate u = clipped_update(trained(), opt_, po_.schedule, po_.clip, step_, l.loss, last_ckpt_);
  l.grad_norm = u.grad_norm, l.lr = u.lr;
  ++step_;
  l.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  curve_.emplace_back(double(l.step), l.loss);
}

json PrefLoop::base_state_json(const char* format) const {
  json j = {{"format", format},
          {"version", 1},
          {"step", step_},
          {"seed", po_.seed},
          {"shuffle", po_.shuffle},
          {"batch", po_.batch},
          {"grad_accum", po_.grad_accum},
          {"pairs", pairs_.size()},
          {"schedule", schedule_json(po_.schedule)},
          {"optimizer", optimizer_json(po_.adamw, po_.clip, opt_.steps())},
          {"history", {{"train", curve_json(curve_)}, {"val", json::array()}}}};
  if (lora_.adapter) j["lora"] = true;
  return j;
}

void PrefLoop::resume(const std::string& ckpt_dir) {
  const json st = read_trainer_state(ckpt_dir);
  const std::string where = ckpt_dir + "/trainer_state.json";
  check_resumed_state(st, where);
  if (st.value("lora", false) != bool(lora_.adapter))
    fail("--resume: ", where, lora_.adapter ? " is a full-model checkpoint, not a LoRA one" : " is a LoRA checkpoint, not a full-model one");
  auto expect = [&](const char* key, const json& want, const char* flag) { expect_state(st, where, key, want, flag); };
  expect("batch", po_.batch, "--batch");
  expect("grad_accum", po_.grad_accum, "--grad-accum");
  expect("shuffle", po_.shuffle, "--no-shuffle");
  expect("seed", po_.seed, "--seed");
  expect("pairs", pairs_.size(), "the preference data");
  const int64_t s = st["step"].get<int64_t>();
  if (s > po_.steps) fail("--resume: ", ckpt_dir, " is at step ", s, ", past --steps ", po_.steps);
  if (!lora_.adapter) {
    // The policy's weights; the starting model stays what the subclass took (DPO's reference).
    const ParamSet saved = params_from_weights(*load_model(ckpt_dir));
    for (Param& p : ps_.params) {
      const Param* q = saved.find(p.name);
      if (!q || q->value.size() != p.value.size())
        fail("--resume: ", ckpt_dir, " has no tensor ", p.name, " of the model's shape");
      p.value = q->value;
    }
  }
  load_optimizer(ckpt_dir, opt_, optimizer_steps_in_state(st, s));
  step_ = s;
  curve_ = curve_from_state(st, "train");
  last_ckpt_ = ckpt_dir;
}

std::string PrefLoop::save() {
  if (po_.out_dir.empty()) return {};
  last_ckpt_ = lora_.adapter ? save_lora_checkpoint(po_.out_dir, step_, *lora_.adapter, ps_.config, opt_, state_json(),
                                                    po_.source)
                              : save_checkpoint(po_.out_dir, step_, ps_, opt_, state_json(), po_.source);
  write_loss_plot(po_.out_dir, curve_, {});
  return last_ckpt_;
}

bool PrefLoop::run_steps(const std::function<void()>& step_and_report, const std::function<bool()>& stop) {
  while (step_ < po_.steps) {
    step_and_report();
    if (stop && stop()) {
      save();
      return false;
    }
    if (step_ < po_.steps && po_.save_every > 0 && step_ % po_.save_every == 0) save();
  }
  save();
  return true;
}

}  // namespace camelid::train
