// `camelid train` against PyTorch (Debian's python3-torch, tests/train_oracle.py): the same HF
// checkpoint, data windows (--no-shuffle) and hyperparameters in f32; per-step loss and grad
// norm within 1e-4 relative, final weights within 1e-4. Skipped when /usr/bin/python3 has no
// torch, unless CI=true.
#include <gtest/gtest.h>

#include <string>

#include "model/lora_io.h"
#include "model/random_model.h"
#include "torch_oracle.h"

using namespace camelid;
using namespace camelid::test;

namespace {

// flags: hyperparameters both sides take under the same names.
void compare(bool tied, const std::string& flags) {
  CAMELID_REQUIRE_TORCH();
  TempDir d;
  RandomModelSpec s = small_spec(DType::F32, tied);
  s.seed = 21;
  write_random_model(d / "init", s);
  std::string ids = "[";
  uint64_t x = 99;
  for (int i = 0; i < 300; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    ids += (i ? "," : "") + std::to_string((x >> 33) % 32);
  }
  spit(d / "ids.json", ids + "]");
  const std::string common = " --steps 20 --seq-len 16 " + flags;
  const OracleRuns r = run_both(d, "train --init " + q(d / "init") + " --data " + q(d / "ids.json"), "train_oracle.py",
                                "--model " + q(d / "init") + " --data " + q(d / "ids.json"), common);
  expect_same_steps(r.ours, r.theirs, 20, {{"loss", 1e-4}, {"grad_norm", 1e-4}, {"lr", 1e-12}});
  expect_same_tensors(d / "out/checkpoint-20/model.safetensors", d / "torch.safetensors");
}

}  // namespace

// GQA, untied head, gradient accumulation, warmup + cosine, clipping and weight decay.
TEST(TrainOracle, MatchesTorchUntiedCosine) {
  compare(false, "--batch 2 --grad-accum 2 --lr 3e-3 --warmup 3 --min-lr 3e-4 --weight-decay 0.1 --clip 1.0");
}

// Tied embeddings, constant rate, no clipping, other betas/eps.
TEST(TrainOracle, MatchesTorchTiedConstant) {
  compare(true, "--batch 3 --grad-accum 1 --lr 1e-3 --lr-schedule constant --weight-decay 0.05 --clip 0 "
                "--beta1 0.8 --beta2 0.99 --eps 1e-6");
}

// LoRA (camelid finetune over a frozen base, PEFT semantics, no dropout) on pre-tokenized SFT
// examples of different lengths with masked prompts: per-step loss and grad norm, final adapter.
TEST(TrainOracle, MatchesTorchLoraFinetune) {
  CAMELID_REQUIRE_TORCH();
  TempDir d;
  RandomModelSpec s = small_spec(DType::F32, false);
  s.seed = 23;
  write_random_model(d / "base", s);
  // The starting adapter: PEFT's init for A, and a non-zero B so that A moves from step 1.
  LoraConfig lc;
  lc.r = 4, lc.alpha = 12;
  lc.targets = {LoraTarget::Q, LoraTarget::K, LoraTarget::V, LoraTarget::O, LoraTarget::Gate, LoraTarget::Up,
                LoraTarget::Down};
  LoraAdapter ad = lora_init(lc, s.config, 3);
  fill_lora_b(ad, 77, 0.2f);
  save_lora(d / "init", ad, s.config);
  std::string data;
  uint64_t x = 5;
  for (int e = 0; e < 9; ++e) {
    std::string ids, labels;
    const int n = 8 + (e * 5) % 9;
    for (int i = 0; i < n; ++i) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      const int id = int((x >> 33) % 32);
      ids += (i ? "," : "") + std::to_string(id);
      labels += (i ? "," : "") + std::to_string(i < n / 3 ? -100 : id);
    }
    data += "{\"input_ids\": [" + ids + "], \"labels\": [" + labels + "]}\n";
  }
  spit(d / "sft.jsonl", data);
  const std::string common = " --steps 20 --seq-len 14 --batch 2 --grad-accum 2 --lr 1e-2 --warmup 3 --min-lr 1e-3 "
                             "--weight-decay 0.05 --clip 0.5";
  const OracleRuns r = run_both(d, "finetune -m " + q(d / "base") + " --lora-init " + q(d / "init") + " --data " + q(d / "sft.jsonl"),
                                "train_oracle.py", "--model " + q(d / "base") + " --lora-init " + q(d / "init") + " --sft-data " + q(d / "sft.jsonl"),
                                common);
  EXPECT_NE(r.out.find("truncated"), std::string::npos) << r.out;  // some examples pass 14+1 tokens
  expect_same_steps(r.ours, r.theirs, 20, {{"loss", 1e-4}, {"grad_norm", 1e-4}, {"lr", 1e-12}});
  expect_same_tensors(d / "out/checkpoint-20/adapter_model.safetensors", d / "torch.safetensors");
}
