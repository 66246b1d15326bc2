// `camelid dpo` against PyTorch (Debian's python3-torch, tests/dpo_oracle.py): the same HF
// checkpoint, pairs (--no-shuffle), beta and AdamW in f32; per-step loss within 1e-4 relative,
// final weights within 1e-4. Skipped when /usr/bin/python3 has no torch, unless CI=true.
#include <gtest/gtest.h>

#include <string>

#include "model/lora_io.h"
#include "model/random_model.h"
#include "torch_oracle.h"

using namespace camelid;
using namespace camelid::test;

namespace {

// lora: train a PEFT adapter (with a non-zero B, so that the policy starts away from the reference,
// the model without it) instead of the whole model.
void compare(bool tied, const std::string& flags, int steps, bool lora = false) {
  CAMELID_REQUIRE_TORCH();
  TempDir d;
  RandomModelSpec s = small_spec(DType::F32, tied);
  s.seed = 23;
  write_random_model(d / "init", s);
  // Five pairs of different lengths, ids < 32.
  spit(d / "pairs.jsonl",
       "{\"prompt_ids\":[1,5,6],\"chosen_ids\":[7,8,2],\"rejected_ids\":[9,2]}\n"
       "{\"prompt_ids\":[1,10],\"chosen_ids\":[11,12,13,2],\"rejected_ids\":[14,2]}\n"
       "{\"prompt_ids\":[1,3,4,5,6,7],\"chosen_ids\":[20,2],\"rejected_ids\":[21,22,23,2]}\n"
       "{\"prompt_ids\":[1,30],\"chosen_ids\":[31],\"rejected_ids\":[29]}\n"
       "{\"prompt_ids\":[1,17,18],\"chosen_ids\":[19,24,25,26,2],\"rejected_ids\":[27,28,2]}\n");
  std::string adapter;
  if (lora) {
    LoraConfig lc;
    lc.r = 4, lc.alpha = 8;
    lc.targets = {LoraTarget::Q, LoraTarget::V, LoraTarget::O, LoraTarget::Gate, LoraTarget::Down};
    LoraAdapter ad = lora_init(lc, s.config, 5);
    fill_lora_b(ad, 91, 0.1f);
    save_lora(d / "adapter", ad, s.config);
    adapter = " --lora-init " + q(d / "adapter");
  }
  const std::string data = " --data " + q(d / "pairs.jsonl") + adapter;
  const OracleRuns r = run_both(d, "dpo --init " + q(d / "init") + data, "dpo_oracle.py", "--model " + q(d / "init") + data,
                                " --steps " + std::to_string(steps) + " " + flags);
  expect_same_steps(r.ours, r.theirs, size_t(steps), {{"loss", 1e-4}, {"grad_norm", 1e-4}});
  for (size_t i = 0; i < r.ours.size() && i < r.theirs.size(); ++i)
    EXPECT_NEAR(double(r.ours[i]["margin"]), double(r.theirs[i]["margin"]), 1e-4) << "step " << i + 1;
  if (!r.ours.empty()) {
    EXPECT_GT(double(r.ours.back()["margin"]), 0.0);  // training moved chosen above rejected
  }
  const std::string ckpt = d / ("out/checkpoint-" + std::to_string(steps));
  expect_same_tensors(ckpt + (lora ? "/adapter_model.safetensors" : "/model.safetensors"), d / "torch.safetensors");
}

}  // namespace

// Untied head, GQA, accumulation, clipping, weight decay.
TEST(DpoOracle, MatchesTorchUntied) {
  compare(false, "--batch 2 --grad-accum 2 --beta 0.5 --lr 3e-3 --clip 1.0 --weight-decay 0.05", 6);
}

// Tied embeddings, no clipping, default beta, other betas.
TEST(DpoOracle, MatchesTorchTied) {
  compare(true, "--batch 3 --grad-accum 1 --lr 2e-3 --clip 0 --beta1 0.8 --beta2 0.99", 5);
}

// LoRA over the frozen model (the reference is the model without the adapter): per-step loss,
// grad norm and margin, and the final adapter.
TEST(DpoOracle, MatchesTorchLora) {
  compare(false, "--batch 2 --grad-accum 2 --beta 0.5 --lr 1e-2 --clip 1.0 --weight-decay 0.05", 6, true);
}
