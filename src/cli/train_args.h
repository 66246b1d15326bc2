#pragma once
// What `train` and `finetune` share on the command line: the optimizer and schedule flags, and how
// the command runs under mpirun.
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "train/trainer.h"

namespace camelid::cli {

// --steps --lr --min-lr --warmup --lr-schedule --beta1 --beta2 --eps --weight-decay (help:
// `decay_help`) --clip, into o (and the schedule's name, parsed later).
void add_optimizer_options(CLI::App* sub, train::TrainOptions& o, std::string& lr_schedule, const char* decay_help);

// Runs `run` on every rank of the job: under mpirun every rank trains (data parallel, see
// Trainer::step) and rank 0 alone reports and writes (the others' stdout is silenced, their log,
// progress and step lines off); an error on any rank ends the whole job. One process: run().
void run_on_every_rank(std::string& log_json, bool& progress, bool& quiet, const std::function<void()>& run);

}  // namespace camelid::cli
