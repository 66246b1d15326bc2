// `camelid dpo` against PyTorch (Debian's python3-torch, tests/dpo_oracle.py): the same HF
// checkpoint, pairs (--no-shuffle), beta and AdamW in f32; per-step loss within 1e-4 relative,
// final weights within 1e-4. Skipped when /usr/bin/python3 has no torch, unless CI=true.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_runner.h"
#include "core/mmap_file.h"
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
  FILE* p = popen(("/usr/bin/python3 '" CAMELID_SOURCE_DIR "/tests/dpo_oracle.py' " + args + " 2>&1").c_str(), "r");
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
    std::vector<float> v(e.nbytes / 4);
    std::memcpy(v.data(), e.data, e.nbytes);
    out[name] = std::move(v);
  }
  return out;
}

void compare(bool tied, const std::string& flags, int steps) {
  if (!have_torch()) {
    const char* ci = std::getenv("CI");
    if (ci && std::string(ci) == "true") FAIL() << "/usr/bin/python3 cannot import torch (apt install python3-torch)";
    GTEST_SKIP() << "/usr/bin/python3 cannot import torch";
  }
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
  const std::string common = " --steps " + std::to_string(steps) + " " + flags;
  auto r = run_camelid("dpo --init " + q(d / "init") + " --data " + q(d / "pairs.jsonl") + " --no-shuffle -t 2" + common +
                           " --log-json " + q(d / "log.jsonl") + " -o " + q(d / "out"),
                       true);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto ours = json_lines(slurp(d / "log.jsonl"));
  const auto theirs = json_lines(run_oracle("--model " + q(d / "init") + " --data " + q(d / "pairs.jsonl") + " --out " +
                                            q(d / "torch.safetensors") + common));
  ASSERT_EQ(ours.size(), size_t(steps));
  ASSERT_EQ(theirs.size(), size_t(steps));
  auto rel = [](double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-12); };
  for (int i = 0; i < steps; ++i) {
    EXPECT_LT(rel(ours[i]["loss"], theirs[i]["loss"]), 1e-4) << "step " << i + 1 << ": " << ours[i] << " vs " << theirs[i];
    EXPECT_LT(rel(ours[i]["grad_norm"], theirs[i]["grad_norm"]), 1e-4) << "step " << i + 1;
    EXPECT_NEAR(double(ours[i]["margin"]), double(theirs[i]["margin"]), 1e-4) << "step " << i + 1;
  }
  EXPECT_GT(double(ours.back()["margin"]), 0.0);  // training moved chosen above rejected
  const auto a = f32_tensors(d / ("out/checkpoint-" + std::to_string(steps) + "/model.safetensors"));
  const auto b = f32_tensors(d / "torch.safetensors");
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

}  // namespace

// Untied head, GQA, accumulation, clipping, weight decay.
TEST(DpoOracle, MatchesTorchUntied) {
  compare(false, "--batch 2 --grad-accum 2 --beta 0.5 --lr 3e-3 --clip 1.0 --weight-decay 0.05", 6);
}

// Tied embeddings, no clipping, default beta, other betas.
TEST(DpoOracle, MatchesTorchTied) {
  compare(true, "--batch 3 --grad-accum 1 --lr 2e-3 --clip 0 --beta1 0.8 --beta2 0.99", 5);
}
