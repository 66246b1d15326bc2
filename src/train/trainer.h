#pragma once
// The training loop: per optimizer step, grad_accum micro-batches of `batch` rows of seq_len
// tokens; loss = mean token cross-entropy over every target of the step; clipping by global norm;
// AdamW with the scheduled rate; validation, checkpoints, resume.
// Rows come from a RowSource (train/rows.h): windows of a token stream (pretraining) or masked
// examples (fine-tuning: loss = mean over the step's targets >= 0). The trained parameters are
// either the whole model (a ParamSet) or a LoRA adapter over a frozen base of any format
// (LoraTraining: only the adapter's parameters get gradients, AdamW state and checkpoints).
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/llama_train.h"
#include "model/params.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/loss_plot.h"
#include "train/lr_schedule.h"
#include "train/rows.h"

namespace camelid::train {

struct TrainOptions {
  int batch = 4;           // rows per micro-batch
  int grad_accum = 1;      // micro-batches per optimizer step
  int64_t steps = 100;     // optimizer steps in the run (total, resumed ones included)
  LrSchedule schedule;     // its `total` is set to steps
  AdamWConfig adamw;
  double clip = 1.0;       // max global grad norm; 0 = no clipping
  bool shuffle = true;
  uint64_t seed = 1234;
  int64_t eval_every = 0;  // steps between validation passes (0: never, except at the end)
  int eval_batches = 4;    // micro-batches of held-out windows per pass
  int64_t save_every = 0;  // steps between checkpoints (0: only at the end)
  std::string out_dir;     // empty: no checkpoints
  CheckpointSource source;
  int global_rows() const { return batch * grad_accum; }
};

struct StepLog {
  int64_t step = 0;  // optimizer steps done (1-based)
  double loss = 0, lr = 0;
  float grad_norm = 0;
  double seconds = 0, tokens_per_s = 0;
  std::optional<double> val_loss;
};

// LoRA/QLoRA: a frozen base (any dtype) and the adapter to train; the Trainer attaches the
// adapter to the base (base->lora). The adapter's params must have grads sized (lora_init does).
struct LoraTraining {
  std::shared_ptr<ModelWeights> base;
  std::shared_ptr<LoraAdapter> adapter;
};

class Trainer {
 public:
  // ps: the model to train (all of its trainable parameters are updated).
  Trainer(ParamSet ps, Windows train, std::optional<Windows> val, TrainOptions o);
  // The same over any rows (val may be null).
  Trainer(ParamSet ps, std::shared_ptr<const RowSource> train, std::shared_ptr<const RowSource> val, TrainOptions o);
  // LoRA: only the adapter is trained; checkpoints are PEFT directories (+ optimizer state).
  Trainer(LoraTraining lora, std::shared_ptr<const RowSource> train, std::shared_ptr<const RowSource> val,
          TrainOptions o);

  // Continues from a checkpoint directory (whose weights ps must already hold): restores the
  // optimizer state, the step and the history; the data order and the schedule must match.
  void resume(const std::string& ckpt_dir);

  // One optimizer step. Throws Error (without touching the weights) when the loss or the grad
  // norm is not finite.
  StepLog step();
  double evaluate();     // mean validation loss (throws if there is no held-out data)
  std::string save();    // checkpoint of the current state; returns its directory

  // Runs to opt.steps: on_step after each step (with val_loss on eval steps); checkpoints every
  // save_every steps and at the end; `stop` (e.g. Ctrl-C) is polled after each step: when it
  // says so a checkpoint is written and run returns false.
  bool run(const std::function<void(const StepLog&)>& on_step, const std::function<bool()>& stop = {});

  int64_t steps_done() const { return step_; }
  // The trained parameters: the model's, or the adapter's in LoRA mode.
  const ParamSet& params() const { return lora_.adapter ? lora_.adapter->params : ps_; }
  bool lora() const { return lora_.adapter != nullptr; }
  const LoraTraining& lora_training() const { return lora_; }
  const std::string& last_checkpoint() const { return last_ckpt_; }
  const TrainOptions& options() const { return o_; }
  size_t tokens_per_step() const { return size_t(o_.global_rows()) * size_t(train_->seq_len()); }
  nlohmann::json state_json() const;

 private:
  Trainer(ParamSet ps, LoraTraining lora, std::shared_ptr<const RowSource> train, std::shared_ptr<const RowSource> val,
          TrainOptions o);
  ParamSet& trained() { return lora_.adapter ? lora_.adapter->params : ps_; }
  void fill_rows(int64_t first_row, int rows, const RowSource& w, WindowOrder* order);
  int64_t row_index(int64_t g, const RowSource& w, WindowOrder* order) { return order ? order->at(g) : g % w.count(); }
  void backward();

  ParamSet ps_;  // LoRA mode: no params, only the base's config
  LoraTraining lora_;
  std::shared_ptr<const RowSource> train_, val_;
  TrainOptions o_;
  AdamW opt_;
  LlamaTrain model_;
  std::shared_ptr<ModelWeights> view_;
  WindowOrder order_;
  int64_t step_ = 0;
  std::vector<int> tokens_, targets_;
  Curve train_curve_, val_curve_;
  std::string last_ckpt_;
};

}  // namespace camelid::train
