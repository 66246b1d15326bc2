// `camelid train-reward`: a reward model (LlamaForSequenceClassification, one label) from a
// causal LM (--init; a new score head) or an earlier reward model, trained on preference pairs
// with the Llama 2 ranking loss with margin (train/reward.h).
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/pref_args.h"
#include "core/error.h"
#include "train/checkpoint.h"
#include "train/reward.h"

namespace camelid::cli {
namespace {

struct RewardArgs : PrefArgs {
  double init_std = 0.02;
};

void run(const RewardArgs& a) {
  set_threads(a.threads);
  std::string ckpt;
  if (!a.resume.empty()) ckpt = train::resolve_checkpoint(a.resume);
  PrefInputs in = load_pref_inputs(a);
  const bool fresh = in.ps.config.num_labels == 0;
  ParamSet ps = train::reward_params_from_lm(std::move(in.ps), a.seed, float(a.init_std));
  train::RewardOptions o;
  fill_pref_options(a, in.tokenizer_dir, o);
  std::printf("train-reward: %zu pairs, %d per step (batch %d x grad-accum %d); %s\n", in.pairs.size(),
              o.pairs_per_step(), o.batch, o.grad_accum,
              fresh ? "a new score head N(0, init-std) on the model's final hidden state" : "continuing a reward model");
  if (a.out.empty()) std::printf("note: no --out: no checkpoint will be written\n");
  std::fflush(stdout);
  train::RewardTrainer t(std::move(ps), std::move(in.pairs), o);
  if (!ckpt.empty()) {
    t.resume(ckpt);
    std::printf("resumed from %s at step %lld\n", ckpt.c_str(), (long long)t.steps_done());
    std::fflush(stdout);
  }

  const std::unique_ptr<std::ofstream> log = open_step_log(a.log_json, !ckpt.empty());
  const int64_t every = std::max<int64_t>(1, a.steps / 20);
  train::RewardStepLog last;
  auto on_step = [&](const train::RewardStepLog& l) {
    last = l;
    write_step_log(log.get(), {{"step", l.step},         {"loss", l.loss},       {"accuracy", l.accuracy},
                          {"chosen", l.chosen},     {"rejected", l.rejected}, {"margin", l.margin},
                          {"grad_norm", l.grad_norm}, {"lr", l.lr}});
    if (l.step % every == 0 || l.step == a.steps)
      std::fprintf(stderr, "step %lld/%lld loss %.4f acc %.2f r(chosen) %.4f r(rejected) %.4f grad norm %.3g lr %.2e\n",
                   (long long)l.step, (long long)a.steps, l.loss, l.accuracy, l.chosen, l.rejected, double(l.grad_norm),
                   l.lr);
  };
  interrupt::install();
  const bool finished = t.run(on_step, [] { return interrupt::pending(); });
  exit_if_interrupted(finished, t.steps_done(), a.out, t.last_checkpoint());
  std::printf("train-reward: %lld steps; loss %.4f, accuracy %.2f, margin %.4f%s%s\n", (long long)t.steps_done(),
              last.loss, last.accuracy, last.margin, t.last_checkpoint().empty() ? "" : "; checkpoint ",
              t.last_checkpoint().c_str());
}

const bool reg_train_reward = add_command([](CLI::App& app) {
  auto a = std::make_shared<RewardArgs>();
  auto* sub = app.add_subcommand("train-reward",
                                 "Train a reward model (Llama + scalar head, Hugging Face LlamaForSequenceClassification) "
                                 "on preference pairs");
  add_pref_options(sub, *a);
  sub->add_option("--init-std", a->init_std, "std of a new score head");
  sub->callback([a] { run(*a); });
});

}  // namespace
}  // namespace camelid::cli
