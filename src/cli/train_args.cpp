#include "cli/train_args.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/interrupt.h"
#include "cli/train_progress.h"
#include "core/error.h"
#include "core/json.h"
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

void add_loop_options(CLI::App* sub, LoopArgs& a, const LoopHelp& h) {
  sub->add_option("--val-data", a.val_data, h.val_data);
  sub->add_option("--val-fraction", a.val_fraction, h.val_fraction);
  sub->add_option("--seq-len,-T", a.seq_len, h.seq_len);
  sub->add_option("--batch,-b", a.o.batch, h.batch);
  sub->add_option("--grad-accum", a.o.grad_accum, "micro-batches per optimizer step");
  sub->add_flag("--no-shuffle", a.no_shuffle, h.no_shuffle);
  sub->add_option("--seed", a.o.seed, h.seed);
  // Optimization.
  add_optimizer_options(sub, a.o, a.lr_schedule, h.weight_decay);
  // Evaluation and output.
  sub->add_option("--eval-every", a.o.eval_every, "steps between validation passes (and at the end)");
  sub->add_option("--eval-batches", a.o.eval_batches, h.eval_batches);
  sub->add_option("-o,--out", a.out, h.out);
  sub->add_option("--save-every", a.o.save_every, "steps between checkpoints (and at the end)");
  sub->add_option("--log-json", a.log_json, "one JSON line per step: step, loss, lr, grad_norm, tokens_per_s[, val_loss]");
  sub->add_flag("--progress", a.progress, "draw the progress bar even when stderr is not a terminal");
  sub->add_option("-t,--threads", a.threads, "threads (0: OpenMP's default)");
}

RunTotals run_and_report(const LoopArgs& a, train::Trainer& t, bool resumed) {
  std::unique_ptr<std::ofstream> log;
  if (!a.log_json.empty()) {
    log = std::make_unique<std::ofstream>(a.log_json, resumed ? std::ios::app : std::ios::trunc);
    if (!*log) fail("--log-json: cannot open ", a.log_json);
  }
  TrainStepProgress bar(a.progress, a.o.steps);
  RunTotals r;
  const int64_t plain_every = std::max<int64_t>(1, a.o.steps / 20);
  auto on_step = [&](const train::StepLog& l) {
    r.seconds += l.seconds, r.tokens += t.tokens_per_step(), r.last = l;
    if (l.val_loss) r.last_val = l.val_loss;
    if (log) {
      nlohmann::json j = {
          {"step", l.step}, {"loss", l.loss}, {"lr", l.lr}, {"grad_norm", l.grad_norm}, {"tokens_per_s", l.tokens_per_s}};
      if (l.val_loss) j["val_loss"] = *l.val_loss;
      *log << dump_json(j) << "\n";
      log->flush();
    }
    const double rate = r.seconds > 0 ? double(r.tokens) / r.seconds : 0;
    const double eta = rate > 0 ? double(a.o.steps - l.step) * double(t.tokens_per_step()) / rate : 0;
    if (a.quiet) {
    } else if (bar.enabled()) {
      bar.update(l, rate, eta);
    } else if (l.step % plain_every == 0 || l.val_loss || l.step == a.o.steps) {
      std::fprintf(stderr, "step %lld/%lld loss %.4f%s lr %.2e grad norm %.3g %.0f tok/s\n", (long long)l.step,
                   (long long)a.o.steps, l.loss, l.val_loss ? (" val " + std::to_string(*l.val_loss)).c_str() : "",
                   l.lr, double(l.grad_norm), rate);
    }
  };
  interrupt::install();
  const bool finished = t.run(on_step, [] { return interrupt::pending(); });
  bar.end();
  if (!finished) {
    std::printf("interrupted at step %lld: %s\n", (long long)t.steps_done(),
                a.out.empty() ? "nothing saved (no --out)" : ("checkpoint " + t.last_checkpoint()).c_str());
    std::fflush(stdout);
    std::exit(130);
  }
  return r;
}

void run_loop_command(LoopArgs& a, const std::function<void()>& run) {
  a.o.out_dir = a.out;
  run_on_every_rank(a.log_json, a.progress, a.quiet, run);
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
