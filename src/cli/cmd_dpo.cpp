// `camelid dpo`: Direct Preference Optimization of a model (full fine-tuning) on preference
// pairs, against the starting model as the frozen reference (train/dpo.h).
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/pref_args.h"
#include "core/error.h"
#include "train/dpo.h"

namespace camelid::cli {
namespace {

struct DpoArgs : PrefArgs {
  double beta = 0.1;
};

void run(const DpoArgs& a) {
  set_threads(a.threads);
  PrefInputs in = load_pref_inputs(a);
  train::DpoOptions o;
  fill_pref_options(a, in.tokenizer_dir, o);
  o.beta = a.beta;
  const size_t n = in.pairs.size();
  std::printf("dpo: %zu pairs, %d per step (batch %d x grad-accum %d), beta %g; reference: the starting model's "
              "log-probabilities, computed once\n",
              n, o.pairs_per_step(), o.batch, o.grad_accum, o.beta);
  if (a.out.empty()) std::printf("note: no --out: no checkpoint will be written\n");
  std::fflush(stdout);
  train::DpoTrainer t(std::move(in.ps), std::move(in.pairs), o);

  const std::unique_ptr<std::ofstream> log = open_step_log(a.log_json);
  const int64_t every = std::max<int64_t>(1, a.steps / 20);
  train::DpoStepLog last;
  auto on_step = [&](const train::DpoStepLog& l) {
    last = l;
    write_step_log(log.get(), {{"step", l.step},          {"loss", l.loss},
                          {"accuracy", l.accuracy},  {"chosen_reward", l.chosen_reward},
                          {"rejected_reward", l.rejected_reward}, {"margin", l.margin},
                          {"grad_norm", l.grad_norm}, {"lr", l.lr}});
    if (l.step % every == 0 || l.step == a.steps)
      std::fprintf(stderr, "step %lld/%lld loss %.4f acc %.2f reward chosen %.4f rejected %.4f margin %.4f grad norm %.3g lr %.2e\n",
                   (long long)l.step, (long long)a.steps, l.loss, l.accuracy, l.chosen_reward, l.rejected_reward, l.margin,
                   double(l.grad_norm), l.lr);
  };
  interrupt::install();
  const bool finished = t.run(on_step, [] { return interrupt::pending(); });
  exit_if_interrupted(finished, t.steps_done(), a.out, t.last_checkpoint());
  std::printf("dpo: %lld steps; loss %.4f, reward accuracy %.2f, margin %.4f%s%s\n", (long long)t.steps_done(), last.loss,
              last.accuracy, last.margin, t.last_checkpoint().empty() ? "" : "; checkpoint ", t.last_checkpoint().c_str());
}

const bool reg = add_command([](CLI::App& app) {
  auto a = std::make_shared<DpoArgs>();
  auto* sub = app.add_subcommand("dpo", "Preference-tune a model with DPO (the starting model as the frozen reference)");
  add_pref_options(sub, *a);
  sub->add_option("--beta", a->beta, "DPO's beta: the strength of the pull to the reference");
  sub->callback([a] { run(*a); });
});

}  // namespace
}  // namespace camelid::cli
