#include "train/pref_loop.h"

#include <cmath>

#include "core/error.h"
#include "train/distributed.h"
#include "train/pref_batch.h"
#include "train/step_common.h"

namespace camelid::train {

using json = nlohmann::json;

PrefLoop::PrefLoop(ParamSet ps, std::vector<PreferencePair> pairs, const PrefOptions& o)
    : ps_(std::move(ps)),
      pairs_(std::move(pairs)),
      po_(o),
      opt_(ps_, po_.adamw),
      model_(ps_.config),
      order_(int64_t(pairs_.size()), po_.shuffle, po_.seed) {}

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
  view_ = weights_view(ps_);
}

std::vector<int64_t> PrefLoop::micro_batch(int64_t s, int m) {
  const int P = po_.pairs_per_step();
  std::vector<int64_t> which;
  for (int b = 0; b < po_.batch; ++b) which.push_back(order_.at(s * P + int64_t(m) * po_.batch + b));
  return which;
}

void PrefLoop::finish_step(PrefStepLog& l, std::chrono::steady_clock::time_point t0) {
  const StepUpdate u = clipped_update(ps_, opt_, po_.schedule, po_.clip, step_, l.loss, last_ckpt_);
  l.grad_norm = u.grad_norm, l.lr = u.lr;
  ++step_;
  l.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  curve_.emplace_back(double(l.step), l.loss);
}

json PrefLoop::base_state_json(const char* format) const {
  return {{"format", format},
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
}

std::string PrefLoop::save() {
  if (po_.out_dir.empty()) return {};
  last_ckpt_ = save_checkpoint(po_.out_dir, step_, ps_, opt_, state_json(), po_.source);
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
