// `camelid generate --lookup / --draft`: greedy output identical to plain decoding, through the binary.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "cli_runner.h"

using namespace camelid::test;
using json = nlohmann::json;

namespace {

const std::string kLlama3 = q(fixture("models/tiny-llama3"));
// Repeats itself, so prompt lookup has n-grams to follow.
const std::string kGen = "generate -m " + kLlama2Arg + " --ids 1,450,7483,338,263,450,7483,338,263,450 -n 24 --temp 0 --json";

TEST(CliSpeculative, LookupAndDraftMatchPlainGreedy) {
  const json plain = run_json(kGen);
  ASSERT_EQ(plain["ids"].size(), 24u);
  EXPECT_FALSE(plain.contains("speculative"));
  for (const std::string& extra : std::vector<std::string>{" --lookup", " --lookup --draft-max 3", " --draft " + kLlama2Arg}) {
    const json spec = run_json(kGen + extra);
    EXPECT_EQ(spec["ids"], plain["ids"]) << extra;
    ASSERT_TRUE(spec.contains("speculative")) << extra;
    const json& st = spec["speculative"];
    EXPECT_GT(st["steps"].get<long>(), 0) << extra;
    EXPECT_LE(st["accepted"].get<long>(), st["drafted"].get<long>()) << extra;
  }
  // The model as its own draft: every guess is the model's own greedy token.
  const json self = run_json(kGen + " --draft " + kLlama2Arg);
  EXPECT_GT(self["speculative"]["drafted"].get<long>(), 0);
  EXPECT_EQ(self["speculative"]["accepted"], self["speculative"]["drafted"]);
}

TEST(CliSpeculative, StatsOnStderr) {
  auto r = run_camelid("generate -m " + kLlama2Arg + " --ids 1,450,7483 -n 4 --temp 0 --lookup", true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("drafted"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("accepted"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokens/s"), std::string::npos) << r.out;
}

TEST(CliSpeculative, DraftWithOtherVocabularyIsAnError) {
  auto r = run_camelid("generate -m " + kLlama2Arg + " --ids 1,450 -n 4 --temp 0 --draft " + kLlama3, true);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_EQ(r.out.rfind("error:", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("vocabulary"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "one line: " << r.out;
}

TEST(CliSpeculative, GrammarWithSpeculationIsAnError) {
  const std::string g = write_temp("spec.gbnf", "root ::= \"a\"+\n");
  auto r = run_camelid("generate -m " + kLlama2Arg + " -p Hi -n 4 --lookup --grammar-file " + q(g), true);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("error:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--grammar-file"), std::string::npos) << r.out;
  std::filesystem::remove(g);
}

TEST(CliSpeculative, BadDraftMaxIsRefused) {
  auto r = run_camelid("generate -m " + kLlama2Arg + " --ids 1 -n 2 --lookup --draft-max 0", true);
  EXPECT_NE(r.status, 0) << r.out;
}

}  // namespace
