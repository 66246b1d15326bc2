#pragma once
// Flags and data loading shared by `camelid dpo` and `camelid train-reward` (preference pairs).
#include <cstdint>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "chat/chat_template.h"
#include "cli/commands.h"
#include "model/params.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"
#include "train/adamw.h"
#include "train/lr_schedule.h"
#include "train/pref_loop.h"
#include "train/preference_data.h"

namespace camelid::cli {

struct PrefArgs {
  std::string init, data, tokenizer, out, log_json, resume, lr_schedule = "constant";
  int batch = 2, grad_accum = 1, threads = 0;
  int64_t steps = 100, save_every = 0;
  double lr = 1e-5, min_lr = 0, clip = 1.0;
  int warmup = 0;
  train::AdamWConfig adamw{0.9, 0.999, 1e-8, 0.0};
  bool no_shuffle = false;
  uint64_t seed = 1234;
};

// --init --data --tokenizer -o --log-json --steps --batch --grad-accum --lr --min-lr --warmup
// --lr-schedule --beta1 --beta2 --eps --weight-decay --clip --no-shuffle --seed --save-every
// --resume -t.
void add_pref_options(CLI::App* sub, PrefArgs& a);

// What the run needs from --init: the model (its f32 parameters, or as loaded: a LoRA base), its
// tokenizer (if any), the pairs.
struct PrefInputs {
  ParamSet ps;                            // as_params
  std::shared_ptr<ModelWeights> weights;  // else
  std::unique_ptr<Tokenizer> tok;
  std::string tokenizer_dir;  // copied into checkpoints
  std::unique_ptr<ChatTemplate> tmpl;
  std::vector<train::PreferencePair> pairs;
};
PrefInputs load_pref_inputs(const PrefArgs& a, bool as_params = true);

train::LrSchedule pref_schedule(const PrefArgs& a);

// The loop options both commands share, from the flags (checkpoints copy tokenizer_dir).
void fill_pref_options(const PrefArgs& a, const std::string& tokenizer_dir, train::PrefOptions& o);

// --log-json: the stream (null when the flag is not given; appended to when resuming) and one
// flushed JSON line per step.
std::unique_ptr<std::ofstream> open_step_log(const std::string& path, bool append = false);
void write_step_log(std::ofstream* log, const nlohmann::json& j);

// After run(): when it was interrupted, says where the last checkpoint is and exits 130.
void exit_if_interrupted(bool finished, int64_t steps_done, const std::string& out, const std::string& last_ckpt);

}  // namespace camelid::cli
