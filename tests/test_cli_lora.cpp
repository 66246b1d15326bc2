// `--lora ADAPTER [--lora-scale s]` on the model commands and `camelid merge`, through the binary:
// a zero-B adapter leaves the output alone, a trained-looking one gives the merged model's output
// (generate: the same tokens; logits within 1e-4), over an f32 directory and a Q4_K_M GGUF (QLoRA).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_runner.h"
#include "model/lora_io.h"
#include "model_files.h"

using namespace camelid;
using namespace camelid::test;
using json = nlohmann::json;

namespace {

const std::string kQ4KM = fixture("gguf/qmix-q4_k_m.gguf");

// An adapter on q, v, o, up and down of `model`; B zero as initialised, or random (as trained).
void write_adapter(const std::string& dir, const std::string& model, bool zero_b) {
  const ModelConfig c = load_model(model)->config;
  LoraConfig lc;
  lc.r = 4, lc.alpha = 8, lc.base_model = model;
  lc.targets = {LoraTarget::Q, LoraTarget::V, LoraTarget::O, LoraTarget::Up, LoraTarget::Down};
  LoraAdapter a = lora_init(lc, c, 9);
  uint32_t s = 12345;
  if (!zero_b)
    for (Param& p : a.params.params)
      if (p.name.find("lora_B") != std::string::npos)
        for (float& v : p.value) s = s * 1664525u + 1013904223u, v = 0.5f * (float(s >> 8) * 0x1.0p-24f - 0.5f);
  save_lora(dir, a, c);
}

// The last position's logits and every position's logsumexp, from `camelid logits`.
std::vector<double> logits(const std::string& args) {
  auto r = run_camelid("logits " + args + " --full-last --top 1");
  EXPECT_EQ(r.status, 0) << args;
  std::vector<double> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line);
    if (j.contains("lse")) out.push_back(j["lse"]);
    if (j.contains("logits"))
      for (double v : j["logits"]) out.push_back(v);
  }
  return out;
}

void expect_close(const std::vector<double>& a, const std::vector<double>& b, double tol, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  ASSERT_GT(a.size(), 10u) << what;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  EXPECT_LT(worst, tol) << what;
}

TEST(CliLora, ZeroAdapterKeepsTheOutputAndATrainedOneGivesTheMergedModels) {
  TempDir dir;
  write_adapter(dir / "zero", kLlama2Dir, true);
  write_adapter(dir / "lora", kLlama2Dir, false);
  const std::string gen = " --ids 1,450,7483,338,263 -n 16 --temp 0 --json";
  const json base = run_json("generate -m " + q(kLlama2Dir) + gen);
  ASSERT_EQ(base["ids"].size(), 16u);
  EXPECT_EQ(run_json("generate -m " + q(kLlama2Dir) + " --lora " + q(dir / "zero") + gen)["ids"], base["ids"]);

  const json adapted = run_json("generate -m " + q(kLlama2Dir) + " --lora " + q(dir / "lora") + gen);
  EXPECT_NE(adapted["ids"], base["ids"]);
  auto m = run_camelid("merge " + q(kLlama2Dir) + " " + q(dir / "lora") + " -o " + q(dir / "merged"));
  ASSERT_EQ(m.status, 0) << m.out;
  EXPECT_TRUE(std::filesystem::exists(dir / "merged/tokenizer.json"));
  EXPECT_EQ(run_json("generate -m " + q(dir / "merged") + gen)["ids"], adapted["ids"]);

  const std::string ids = " --ids 1,450,7483,338,263,450,7483";
  expect_close(logits("-m " + q(dir / "merged") + ids), logits("-m " + q(kLlama2Dir) + " --lora " + q(dir / "lora") + ids),
               1e-4, "merged vs base+adapter");
  // --lora-scale 0 is the base; merge --lora-scale scales the same way.
  expect_close(logits("-m " + q(kLlama2Dir) + " --lora " + q(dir / "lora") + " --lora-scale 0" + ids),
               logits("-m " + q(kLlama2Dir) + ids), 1e-6, "scale 0");
  ASSERT_EQ(run_camelid("merge " + q(kLlama2Dir) + " " + q(dir / "lora") + " -o " + q(dir / "half") + " --lora-scale 0.5").status, 0);
  expect_close(logits("-m " + q(dir / "half") + ids),
               logits("-m " + q(kLlama2Dir) + " --lora " + q(dir / "lora") + " --lora-scale 0.5" + ids), 1e-4, "scale 0.5");
  // Perplexity takes the adapter too.
  const std::string ids_file = write_temp("lora_ids.json", "[1,450,7483,338,263,450,7483,338]");
  const json p0 = run_json("perplexity -m " + q(dir / "merged") + " --ids-file " + q(ids_file) + " --json");
  const json p1 = run_json("perplexity -m " + q(kLlama2Dir) + " --lora " + q(dir / "lora") + " --ids-file " + q(ids_file) + " --json");
  EXPECT_NEAR(p0["mean_nll"].get<double>(), p1["mean_nll"].get<double>(), 1e-5);
}

// QLoRA: the adapter over a Q4_K_M GGUF (q/k rows in interleaved RoPE order). The merged model
// is a Hugging Face directory (f32, q/k rows back in rotate-half order) whose logits are those
// of the dequantized base plus the adapter (--exact: f32 activations against exactly
// dequantized weights, the arithmetic the merged f32 model does).
TEST(CliLora, QuantizedGgufBaseMergesToTheSameModel) {
  TempDir dir;
  write_adapter(dir / "lora", kQ4KM, false);
  auto m = run_camelid("merge " + q(kQ4KM) + " " + q(dir / "lora") + " -o " + q(dir / "merged"), true);
  ASSERT_EQ(m.status, 0) << m.out;
  EXPECT_NE(m.out.find("base dequantized"), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("no tokenizer files"), std::string::npos) << m.out;
  const std::string ids = " --ids 1,450,7483,338,263,450";
  expect_close(logits("-m " + q(dir / "merged") + ids), logits("-m " + q(kQ4KM) + " --exact --lora " + q(dir / "lora") + ids),
               1e-4, "merged vs Q4_K_M + adapter");
  // An adapter made for another model is refused, naming the tensor.
  auto bad = run_camelid("generate -m " + q(kLlama2Dir) + " --lora " + q(dir / "lora") + " --ids 1 -n 1", true);
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("adapter_model.safetensors: tensor base_model.model.model.layers."), std::string::npos) << bad.out;
  // merge refuses to write over a model.
  EXPECT_EQ(run_camelid("merge " + q(kQ4KM) + " " + q(dir / "lora") + " -o " + q(dir / "merged")).status, 1);
}

}  // namespace
