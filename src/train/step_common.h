#pragma once
// What every training loop's optimizer step and checkpoint share (pretraining, DPO, reward):
// clipping, the stop on a non-finite loss, the scheduled AdamW update, the state's schedule and
// optimizer records, and the loss picture beside the checkpoints.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "model/params.h"
#include "train/adamw.h"
#include "train/loss_plot.h"
#include "train/lr_schedule.h"

namespace camelid::train {

struct StepUpdate {
  float grad_norm = 0;
  double lr = 0;
};

// Clips the gradients to `clip` (0: none); throws Error without touching the weights when `loss`
// or the norm is not finite (naming `last_ckpt`, the last good checkpoint, if any); else takes
// the AdamW step with the schedule's rate at step_index (0-based). `step` is 1-based, for messages.
StepUpdate clipped_update(ParamSet& ps, AdamW& opt, const LrSchedule& schedule, double clip, int64_t step_index,
                          double loss, const std::string& last_ckpt);

// splitmix64's finaliser: seeds derived from (seed, position) so that a resumed run draws what an
// uninterrupted one would (LoRA dropout masks).
uint64_t mix64(uint64_t x);

nlohmann::json schedule_json(const LrSchedule& s);
nlohmann::json optimizer_json(const AdamWConfig& c, double clip, int64_t steps);
nlohmann::json curve_json(const Curve& c);

// --resume's checks and reads of a checkpoint's trainer_state.json (`where` names it): st[key]
// must equal `want`, else Error saying that `flag` must match; history[which]'s points (malformed
// ones skipped); the optimizer's step count (default `step`).
void expect_state(const nlohmann::json& st, const std::string& where, const char* key, const nlohmann::json& want,
                  const char* flag);
Curve curve_from_state(const nlohmann::json& st, const char* which);
int64_t optimizer_steps_in_state(const nlohmann::json& st, int64_t step);

// OUT/loss.svg, rewritten atomically; a convenience, so a failure to write it is ignored.
void write_loss_plot(const std::string& out_dir, const Curve& train, const Curve& val);

}  // namespace camelid::train
