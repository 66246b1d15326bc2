// The model subcommands end to end through the real binary.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_runner.h"

using namespace camelid::test;
using json = nlohmann::json;

namespace {

TEST(Cli, GenerateGreedyJsonMatchesReference) {
  std::ifstream in(fixture("reference/public-model-tiny-llama2.json"));
  json ref = json::parse(in)["prompts"][0];
  std::string ids;
  for (int id : ref["ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  auto r = run_camelid("generate -m " + kLlama2Arg + " --ids " + ids + " -n 3 --temp 0 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  json j = json::parse(r.out);
  ASSERT_EQ(j["ids"].size(), 3u);
  // The first step's margin is far above the tolerance: it must be the reference token.
  EXPECT_EQ(j["ids"][0], ref["greedy"][0]);
  EXPECT_EQ(j["finish_reason"], "length");
}

TEST(Cli, GenerateSameSeedSameOutput) {
  const std::string cmd = "generate -m " + kLlama2Arg + " --ids 1,450,7483 -n 8 --temp 1 --top-k 0 --top-p 1 --min-p 0 --seed 42 --json";
  auto a = run_camelid(cmd), b = run_camelid(cmd);
  ASSERT_EQ(a.status, 0);
  EXPECT_EQ(json::parse(a.out)["ids"], json::parse(b.out)["ids"]);
}

TEST(Cli, LogitsJsonLines) {
  auto r = run_camelid("logits -m " + kLlama2Arg + " --ids 1,450,7483 --positions 0,2 --top 4 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<int> pos;
  while (std::getline(lines, line)) {
    json j = json::parse(line);
    pos.push_back(j["pos"]);
    EXPECT_EQ(j["top"].size(), 4u);
    EXPECT_GT(j["lse"].get<double>(), j["top"][0][1].get<double>());
  }
  EXPECT_EQ(pos, (std::vector<int>{0, 2}));
  r = run_camelid("logits -m " + kLlama2Arg + " --ids 1,450 --positions last --full-last");
  ASSERT_EQ(r.status, 0);
  std::istringstream l2(r.out);
  std::getline(l2, line);
  std::getline(l2, line);
  EXPECT_EQ(json::parse(line)["logits"].size(), 32000u);
}

TEST(Cli, PerplexityFromIdsFile) {
  std::ifstream in(fixture("reference/public-model-stories260K-hf.json"));
  json ref = json::parse(in)["prompts"][0];
  const std::string f = std::filesystem::temp_directory_path() / ("camelid-ids-" + std::to_string(::getpid()));
  std::ofstream(f) << ref["ids"].dump();
  auto r = run_camelid("perplexity -m '" + fixture("models/stories260K/stories260K.bin") + "' --ids-file " + f + " --json");
  std::filesystem::remove(f);
  ASSERT_EQ(r.status, 0) << r.out;
  json j = json::parse(r.out);
  EXPECT_EQ(j["tokens"], ref["ids"].size() - 1);
  EXPECT_NEAR(j["mean_nll"].get<double>(), ref["mean_nll"].get<double>(), 1e-4 * ref["mean_nll"].get<double>());
}

TEST(Cli, GenRandomThenBenchJson) {
  const std::string dir = std::filesystem::temp_directory_path() / ("camelid-rand-" + std::to_string(::getpid()));
  auto r = run_camelid("gen-random -o " + dir + " --preset tiny --dtype bf16 --layers 1");
  ASSERT_EQ(r.status, 0) << r.out;
  r = run_camelid("bench -m " + dir + " -p 8 -n 4 --reps 1 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  json j = json::parse(r.out);
  EXPECT_GT(j["prefill_tok_s"].get<double>(), 0);
  EXPECT_GT(j["decode_tok_s"].get<double>(), 0);
  EXPECT_GT(j["decode_gb_s"].get<double>(), 0);
  EXPECT_EQ(j["dtype"], "bf16");

  // bf16 dot is the default exactly where info says the CPU supports it; --no-bf16-dot turns it
  // off; --serve reports each count.
  r = run_camelid("info -m " + dir + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const bool supported = json::parse(r.out)["bf16_dot_supported"];
  EXPECT_EQ(j["bf16_dot"], supported);
  r = run_camelid("bench -m " + dir + " -p 8 -n 4 --reps 1 --json --no-bf16-dot");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(json::parse(r.out)["bf16_dot"], false);
  r = run_camelid("bench -m " + dir + " --serve --clients 1,3 -p 4 -n 3 --reps 1 --json --bf16-dot");
  std::filesystem::remove_all(dir);
  ASSERT_EQ(r.status, 0) << r.out;
  j = json::parse(r.out);
  EXPECT_EQ(j["bf16_dot"], supported);
  ASSERT_EQ(j["serve"].size(), 2u);
  EXPECT_EQ(j["serve"][1]["clients"], 3);
  EXPECT_EQ(j["serve"][1]["generated"], 9);
  EXPECT_GT(j["serve"][1]["decode_matmul_gflop_s"].get<double>(), 0);
}

TEST(Cli, ErrorsAreOneClearLine) {
  for (const std::string& args : std::vector<std::string>{std::string("generate -m /no/such/model --ids 1,2"), "generate -m " + kLlama2Arg + " --ids 1,x",
                                 "generate -m " + kLlama2Arg + " --ids 1,99999999", "logits -m " + kLlama2Arg + " --ids 1 --positions 5",
                                 "generate -m " + kLlama2Arg + " --ids 1 --top-p 2"}) {
    auto r = run_camelid(args, true);
    EXPECT_EQ(r.status, 1) << args;
    EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << args << " -> " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
}

}  // namespace
