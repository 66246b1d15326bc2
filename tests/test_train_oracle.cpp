// `camelid train` against PyTorch (Debian's python3-torch, tests/train_oracle.py): the same HF
// checkpoint, data windows (--no-shuffle) and hyperparameters in f32; per-step loss and grad
// norm within 1e-4 relative, final weights within 1e-4. Skipped when /usr/bin/python3 has no
// torch, unless CI=true.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <cstring>
#include <map>
#include <sstream>

#include "cli_runner.h"
#include "core/mmap_file.h"
#include "model/lora_io.h"
#include "model/random_model.h"
#include "model/safetensors.h"
#include "model_files.h"

using namespace camelid;
using namespace camelid::test;

namespace {

bool have_torch() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0;
  return ok;
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] == '{') out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string run_oracle(const std::string& args) {
  std::string out;
  FILE* p = popen(("/usr/bin/python3 '" CAMELID_SOURCE_DIR "/tests/train_oracle.py' " + args + " 2>&1").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << out;
  return out;
}

std::map<std::string, std::vector<float>> f32_tensors(const std::string& path) {
  MappedFile f(path);
  std::map<std::string, std::vector<float>> out;
  for (auto& [name, e] : parse_safetensors(f)) {
    EXPECT_EQ(e.dtype, "F32") << name;
    std::vector<float> v(e.nbytes / 4);
    std::memcpy(v.data(), e.data, e.nbytes);
    out[name] = std::move(v);
  }
  return out;
}

#define REQUIRE_TORCH()                                                                                   \
  do {                                                                                                    \
    if (!have_torch()) {                                                                                  \
      const char* ci = std::getenv("CI");                                                                 \
      if (ci && std::string(ci) == "true") FAIL() << "/usr/bin/python3 cannot import torch (apt install python3-torch)"; \
      GTEST_SKIP() << "/usr/bin/python3 cannot import torch";                                             \
    }                                                                                                     \
  } while (0)

auto rel = [](double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-12); };

void expect_same_steps(const std::vector<nlohmann::json>& ours, const std::vector<nlohmann::json>& theirs, size_t n) {
  ASSERT_EQ(ours.size(), n);
  ASSERT_EQ(theirs.size(), n);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(ours[i]["step"], theirs[i]["step"]);
    EXPECT_LT(rel(ours[i]["loss"], theirs[i]["loss"]), 1e-4) << "step " << i + 1 << ": " << ours[i] << " vs " << theirs[i];
    EXPECT_LT(rel(ours[i]["grad_norm"], theirs[i]["grad_norm"]), 1e-4) << "step " << i + 1;
    EXPECT_LT(rel(ours[i]["lr"], theirs[i]["lr"]), 1e-12) << "step " << i + 1;
  }
}

void expect_same_tensors(const std::string& ours, const std::string& theirs) {
  const auto a = f32_tensors(ours), b = f32_tensors(theirs);
  ASSERT_EQ(a.size(), b.size());
  for (auto& [name, v] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    const auto& w = b.at(name);
    ASSERT_EQ(v.size(), w.size()) << name;
    float worst = 0;
    for (size_t i = 0; i < v.size(); ++i) worst = std::max(worst, std::abs(v[i] - w[i]));
    EXPECT_LT(worst, 1e-4) << name;
  }
}

// flags: hyperparameters both sides take under the same names.
void compare(bool tied, const std::string& flags) {
  REQUIRE_TORCH();
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
  auto r = run_camelid("train --init " + q(d / "init") + " --data " + q(d / "ids.json") + " --no-shuffle -t 2" + common +
                           " --log-json " + q(d / "log.jsonl") + " -o " + q(d / "out"),
                       true);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto ours = json_lines(slurp(d / "log.jsonl"));
  const auto theirs = json_lines(run_oracle("--model " + q(d / "init") + " --data " + q(d / "ids.json") + " --out " +
                                            q(d / "torch.safetensors") + common));
  expect_same_steps(ours, theirs, 20);
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
  REQUIRE_TORCH();
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
  uint32_t u = 77;
  for (Param& p : ad.params.params)
    if (p.name.find("lora_B") != std::string::npos)
      for (float& v : p.value) u = u * 1664525u + 1013904223u, v = 0.2f * (float(u >> 8) * 0x1.0p-24f - 0.5f);
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
  auto r = run_camelid("finetune -m " + q(d / "base") + " --lora-init " + q(d / "init") + " --data " + q(d / "sft.jsonl") +
                           " --no-shuffle -t 2" + common + " --log-json " + q(d / "log.jsonl") + " -o " + q(d / "out"),
                       true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("truncated"), std::string::npos) << r.out;  // some examples pass 14+1 tokens
  const auto theirs = json_lines(run_oracle("--model " + q(d / "base") + " --lora-init " + q(d / "init") + " --sft-data " +
                                            q(d / "sft.jsonl") + " --out " + q(d / "torch.safetensors") + common));
  expect_same_steps(json_lines(slurp(d / "log.jsonl")), theirs, 20);
  expect_same_tensors(d / "out/checkpoint-20/adapter_model.safetensors", d / "torch.safetensors");
}
