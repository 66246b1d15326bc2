#include "cli/lora_args.h"

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "model/lora.h"
#include "model/lora_io.h"
#include "model/weights.h"

namespace camelid::cli {

namespace {

std::vector<LoraTarget> parse_targets(const std::string& list) {
  std::vector<LoraTarget> out;
  std::stringstream ss(list);
  for (std::string t; std::getline(ss, t, ',');)
    if (!t.empty()) out.push_back(lora_target_from_name(t));
  return out;
}

bool peft_checkpoint(const std::string& ckpt) {
  return !ckpt.empty() && std::filesystem::exists(std::filesystem::path(ckpt) / "adapter_config.json");
}

}  // namespace

void add_lora_options(CLI::App* sub, LoraArgs& a) {
  sub->add_option("--lora-r", a.r, "train a LoRA adapter of this rank over the frozen model (0: full fine-tuning)");
  sub->add_option("--lora-init", a.init, "train this PEFT adapter directory further (its r, alpha, dropout, targets)");
  sub->add_option("--lora-alpha", a.alpha, "LoRA alpha (scale alpha / r; default 2 x r)");
  sub->add_option("--lora-dropout", a.dropout, "dropout on the adapter's input while training");
  sub->add_option("--lora-targets", a.targets, "comma-separated modules among q,k,v,o,gate,up,down (default q,k,v,o)");
}

bool lora_mode(const LoraArgs& a, const std::string& ckpt) {
  const bool resume_lora = peft_checkpoint(ckpt);
  if (!a.init.empty() && (a.r > 0 || !ckpt.empty())) fail("--lora-init: give it without --lora-r or --resume");
  if (!ckpt.empty() && !resume_lora && a.r > 0)
    fail("--resume: ", ckpt, " is a full fine-tuning checkpoint, but --lora-r was given");
  return a.r > 0 || resume_lora || !a.init.empty();
}

train::LoraTraining load_lora_training(std::shared_ptr<ModelWeights> base, const std::string& model, const LoraArgs& a,
                                       const std::string& ckpt, uint64_t seed) {
  train::LoraTraining lt;
  lt.base = std::move(base);
  if (peft_checkpoint(ckpt) || !a.init.empty()) {
    lt.adapter = load_lora(!ckpt.empty() ? ckpt : a.init, lt.base->config);
    for (Param& p : lt.adapter->params.params) p.trainable = true, p.decay = true, p.grad.assign(p.value.size(), 0.f);
  } else {
    LoraConfig lc;
    lc.r = a.r;
    lc.alpha = a.alpha > 0 ? a.alpha : 2.0 * a.r;
    lc.dropout = a.dropout;
    lc.targets = parse_targets(a.targets);
    lc.base_model = model;
    lt.adapter = std::make_shared<LoraAdapter>(lora_init(lc, lt.base->config, seed));
  }
  return lt;
}

void print_lora_summary(const train::LoraTraining& lt) {
  const LoraConfig& lc = lt.adapter->config;
  std::string targets;
  for (LoraTarget t : lc.targets) targets += std::string(targets.empty() ? "" : ",") + lora_target(t).short_name;
  std::printf("LoRA: r %d, alpha %g, dropout %g, targets %s: %zu trainable parameters over a frozen %zu-parameter base\n",
              lc.r, lc.alpha, lc.dropout, targets.c_str(), lt.adapter->params.numel(), lt.base->matmul_parameters());
}

}  // namespace camelid::cli
