#include "cli/train_args.h"

#include <cstdio>

#include "core/error.h"
#include "train/distributed.h"

namespace camelid::cli {

void add_optimizer_options(CLI::App* sub, train::TrainOptions& o, std::string& lr_schedule, const char* decay_help) {
  sub->add_option("--steps", o.steps, "optimizer steps");
  sub->add_option("--lr", o.schedule.lr, "peak learning rate");
  sub->add_option("--min-lr", o.schedule.min_lr, "learning rate at the last step (cosine)");
  sub->add_option("--warmup", o.schedule.warmup, "steps of linear warmup");
  sub->add_option("--lr-schedule", lr_schedule, "cosine | constant (after warmup)");
  sub->add_option("--beta1", o.adamw.beta1, "AdamW beta1");
  sub->add_option("--beta2", o.adamw.beta2, "AdamW beta2");
  sub->add_option("--eps", o.adamw.eps, "AdamW eps");
  sub->add_option("--weight-decay", o.adamw.weight_decay, decay_help);
  sub->add_option("--clip", o.clip, "clip gradients to this global L2 norm (0: off)");
}

void run_on_every_rank(std::string& log_json, bool& progress, bool& quiet, const std::function<void()>& run) {
  train::Comm& comm = train::Comm::world();
  if (comm.size() == 1) return run();
  if (!comm.is_root()) {
    if (!std::freopen("/dev/null", "w", stdout)) fail("cannot silence rank ", comm.rank(), "'s output");
    log_json.clear(), progress = false, quiet = true;
  }
  try {
    run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: rank %d: %s\n", comm.rank(), e.what());
    comm.abort(1);
  }
}

}  // namespace camelid::cli
