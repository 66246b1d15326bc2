#pragma once
// The LoRA flags of the training commands (finetune, dpo): --lora-r --lora-alpha --lora-dropout
// --lora-targets --lora-init, and the adapter they make over a frozen base in any format camelid
// loads (quantized GGUF: QLoRA).
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "train/trainer.h"

namespace camelid::cli {

struct LoraArgs {
  int r = 0;
  double alpha = 0, dropout = 0;
  std::string targets = "q,k,v,o", init;
};

void add_lora_options(CLI::App* sub, LoraArgs& a);

// Whether the run trains an adapter: --lora-r, --lora-init, or a --resume checkpoint `ckpt` (empty:
// none) that is a PEFT directory. Throws Error on contradictory flags.
bool lora_mode(const LoraArgs& a, const std::string& ckpt);

// The base (`model` names it) and its adapter: the checkpoint's (resume), --lora-init's, or a
// new one (lora_init with `seed`); every adapter parameter trainable, under weight decay.
train::LoraTraining load_lora_training(std::shared_ptr<ModelWeights> base, const std::string& model, const LoraArgs& a,
                                       const std::string& ckpt, uint64_t seed);

// "LoRA: r 8, alpha 16, ... trainable parameters over a frozen N-parameter base" on stdout.
void print_lora_summary(const train::LoraTraining& lt);

}  // namespace camelid::cli
