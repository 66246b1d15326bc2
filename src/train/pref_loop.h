#pragma once
// What DPO (train/dpo.h) and reward-model training (train/reward.h) share: their options, the
// common part of their step logs, and the loop around a step's gradients (the model and its
// AdamW, the pair order, clipping, the NaN stop, checkpoints with the loss picture, run(),
// resume()). The trained parameters are the whole model (a ParamSet) or a LoRA adapter over a
// frozen base of any format (LoraTraining, as train::Trainer's: PEFT checkpoints).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
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
#include "train/trainer.h"

namespace camelid::train {

struct PrefOptions {
  int batch = 2;            // pairs per micro-batch (2 rows each)
  int grad_accum = 1;       // micro-batches per optimizer step
  int64_t steps = 100;
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

struct PrefStepLog {
  int64_t step = 0;
  double loss = 0, lr = 0;
  float grad_norm = 0;
  double accuracy = 0;      // fraction of pairs whose chosen response scores above the rejected
  double margin = 0;        // mean chosen minus mean rejected score
  double seconds = 0;
};

// The shared loop; a subclass computes step s's loss and gradients (compute_gradients).
class PrefLoop {
 public:
  virtual ~PrefLoop() = default;
  std::string save();
  int64_t steps_done() const { return step_; }
  // The trained parameters: the model's, or the adapter's in LoRA mode.
  const ParamSet& params() const { return lora_.adapter ? lora_.adapter->params : ps_; }
  bool lora() const { return lora_.adapter != nullptr; }
  // Continues from a checkpoint directory of the same run (its pair order, batch and method must
  // match): the optimizer state, the step and the history; in full mode also the weights (read
  // from ckpt_dir), in LoRA mode the adapter must already hold the checkpoint's.
  void resume(const std::string& ckpt_dir);
  const std::string& last_checkpoint() const { return last_ckpt_; }

 protected:
  // lora.adapter set: LoRA mode (ps then holds only the base's config).
  PrefLoop(ParamSet ps, LoraTraining lora, std::vector<PreferencePair> pairs, const PrefOptions& o);
  // The subclass's constructor validates in this order: check_counts(), its own options,
  // check_rest(), then calls ready(). what: the command, for messages ("dpo", "train-reward");
  // one_process: the message when run with several ranks; lm_rows: rows end with a next-token
  // target (DPO), so a pair needs one token more than its length.
  void check_counts() const;
  void check_rest(const char* what, const char* one_process, bool lm_rows) const;
  void ready();
  // The pair indices of micro-batch m of optimizer step s; seeds the adapter's dropout for it (a
  // function of the seed and the position, so a resumed run draws the same masks).
  std::vector<int64_t> micro_batch(int64_t s, int m);
  // Forward passes that are not training (reference and scoring): no dropout.
  void no_dropout() { model_.set_dropout(false); }
  ParamSet& trained() { return lora_.adapter ? lora_.adapter->params : ps_; }
  // The backward of the last forward into the trained parameters' gradients.
  void backward(const float* dhidden = nullptr);
  // Clips, stops on a non-finite loss, takes the AdamW step and records it in `l` (whose step and
  // loss compute_gradients set) and the curve.
  void finish_step(PrefStepLog& l, std::chrono::steady_clock::time_point t0);
  // Steps to o.steps, calling step_and_report each time; checkpoints every save_every steps and at
  // the end; `stop` is polled after each step (then a checkpoint, and false).
  bool run_steps(const std::function<void()>& step_and_report, const std::function<bool()>& stop);
  // run() of a subclass: run_steps over its step(), passing each log to on_step.
  template <class Trainer, class Log>
  static bool run_logged(Trainer& t, const std::function<void(const Log&)>& on_step, const std::function<bool()>& stop) {
    return t.run_steps(
        [&] {
          const Log l = t.step();
          if (on_step) on_step(l);
        },
        stop);
  }
  // The state record with the fields both loops write; the subclass adds its own.
  nlohmann::json base_state_json(const char* format) const;
  virtual nlohmann::json state_json() const = 0;
  // resume()'s checks of what the subclass adds to the state (format and method settings).
  virtual void check_resumed_state(const nlohmann::json& st, const std::string& where) const = 0;

  ParamSet ps_;  // LoRA mode: no params, only the base's config
  LoraTraining lora_;
  std::vector<PreferencePair> pairs_;
  PrefOptions po_;
  AdamW opt_;
  LlamaTrain model_;
  std::shared_ptr<ModelWeights> view_;
  WindowOrder order_;
  int64_t step_ = 0;
  Curve curve_;
  std::string last_ckpt_;
};

}  // namespace camelid::train
