// `camelid dpo`: Direct Preference Optimization of a model on preference pairs (train/dpo.h): full
// fine-tuning against the starting model as the frozen reference, or a LoRA adapter over the
// frozen model (any format, quantized GGUF included) against the model without it; --resume.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/lora_args.h"
#include "cli/pref_args.h"
#include "core/error.h"
#include "train/checkpoint.h"
#include "train/dpo.h"

namespace camelid::cli {
namespace {

struct DpoArgs : PrefArgs {
  double beta = 0.1;
  LoraArgs lora;
};

void run(const DpoArgs& a) {
  set_threads(a.threads);
  std::string ckpt;
  if (!a.resume.empty()) ckpt = train::resolve_checkpoint(a.resume);
  const bool lora = lora_mode(a.lora, ckpt);
  PrefInputs in = load_pref_inputs(a, !lora);
  train::DpoOptions o;
  fill_pref_options(a, in.tokenizer_dir, o);
  o.beta = a.beta;
  train::LoraTraining lt;
  if (lora) {
    lt = load_lora_training(std::move(in.weights), a.init, a.lora, ckpt, a.seed);
    print_lora_summary(lt);
  }
  const size_t n = in.pairs.size();
  std::printf("dpo: %zu pairs, %d per step (batch %d x grad-accum %d), beta %g; reference: the %s log-probabilities, "
              "computed once\n",
              n, o.pairs_per_step(), o.batch, o.grad_accum, o.beta,
              lora ? "model's without the adapter" : "starting model's");
  if (a.out.empty()) std::printf("note: no --out: no checkpoint will be written\n");
  std::fflush(stdout);
  std::unique_ptr<train::DpoTrainer> tp = lora ? std::make_unique<train::DpoTrainer>(lt, std::move(in.pairs), o)
                                               : std::make_unique<train::DpoTrainer>(std::move(in.ps), std::move(in.pairs), o);
  train::DpoTrainer& t = *tp;
  if (!ckpt.empty()) {
    t.resume(ckpt);
    std::printf("resumed from %s at step %lld\n", ckpt.c_str(), (long long)t.steps_done());
    std::fflush(stdout);
  }

  const std::unique_ptr<std::ofstream> log = open_step_log(a.log_json, !ckpt.empty());
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

const bool reg_dpo = add_command([](CLI::App& app) {
  auto a = std::make_shared<DpoArgs>();
  auto* sub = app.add_subcommand("dpo", "Preference-tune a model with DPO, fully or with LoRA/QLoRA (the starting model as "
                                        "the frozen reference)");
  add_pref_options(sub, *a);
  sub->add_option("--beta", a->beta, "DPO's beta: the strength of the pull to the reference");
  add_lora_options(sub, a->lora);
  sub->callback([a] { run(*a); });
});

}  // namespace
}  // namespace camelid::cli
