#pragma once
// What `train` and `finetune` share on the command line: the data-order, optimizer, schedule,
// evaluation and output flags, and how the command runs under mpirun.
#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "train/trainer.h"

namespace camelid::cli {

// The flags both commands take (add_loop_options); each command's args derive from it.
struct LoopArgs {
  std::string resume, out, log_json, lr_schedule = "cosine";
  std::vector<std::string> data, val_data;
  int seq_len = 0, threads = 0;
  double val_fraction = 0;
  bool no_shuffle = false, progress = false, quiet = false;  // quiet: a rank other than 0
  train::TrainOptions o;
};

// The help texts that differ between the commands (what a row is, what --out holds, ...).
struct LoopHelp {
  const char *val_data, *val_fraction, *seq_len, *batch, *no_shuffle, *seed, *weight_decay, *eval_batches, *out;
};

// --val-data --val-fraction --seq-len --batch --grad-accum --no-shuffle --seed, the optimizer's
// (add_optimizer_options), --eval-every --eval-batches -o --save-every --log-json --progress -t.
void add_loop_options(CLI::App* sub, LoopArgs& a, const LoopHelp& h);

// The command's callback: --out into the options, then run on every rank (run_on_every_rank).
void run_loop_command(LoopArgs& a, const std::function<void()>& run);

// --steps --lr --min-lr --warmup --lr-schedule --beta1 --beta2 --eps --weight-decay (help:
// `decay_help`) --clip, into o (and the schedule's name, parsed later).
void add_optimizer_options(CLI::App* sub, train::TrainOptions& o, std::string& lr_schedule, const char* decay_help);

struct RunTotals {
  double seconds = 0;  // in steps
  size_t tokens = 0;
  train::StepLog last;
  std::optional<double> last_val;
};

// Runs the trainer to --steps with Ctrl-C as its stop, reporting each step: a --log-json line
// (the file appended to when resumed), and the progress bar or a plain line every steps/20 (none
// when quiet). When interrupted, says where the last checkpoint is and exits 130.
RunTotals run_and_report(const LoopArgs& a, train::Trainer& t, bool resumed);

// Runs `run` on every rank of the job: under mpirun every rank trains (data parallel, see
// Trainer::step) and rank 0 alone reports and writes (the others' stdout is silenced, their log,
// progress and step lines off); an error on any rank ends the whole job. One process: run().
void run_on_every_rank(std::string& log_json, bool& progress, bool& quiet, const std::function<void()>& run);

}  // namespace camelid::cli
