// `generate` and `chat` without -m run the model that ships in the repository
// (models/camelid-brown, trained by camelid: scripts/default-model/train.sh), or $CAMELID_MODEL.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "fixtures.h"

using namespace camelid::test;
namespace fs = std::filesystem;

namespace {
const fs::path kDefault = fs::path(CAMELID_SOURCE_DIR) / "models" / "camelid-brown";
}

TEST(CliDefaultModel, GenerateWithoutModelWritesEnglish) {
  ASSERT_TRUE(fs::exists(kDefault / "config.json")) << kDefault << " is part of the repository";
  auto r = run_camelid("generate -p 'The jury said' -n 24 --temp 0 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  const std::string text = j["text"].get<std::string>();
  EXPECT_EQ(j["ids"].size(), 24u) << r.out;
  // Words of English: mostly letters and spaces, several words.
  int letters = 0, spaces = 0;
  for (unsigned char c : text) letters += std::isalpha(c) != 0, spaces += c == ' ';
  EXPECT_GT(letters, int(text.size()) / 2) << text;
  EXPECT_GE(spaces, 3) << text;
}

TEST(CliDefaultModel, EnvironmentPicksAnotherModel) {
  auto r = run_camelid("generate -p hi -n 2 --temp 0", true);
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string bad = "/nonexistent/camelid-model";
  r = CmdResult{};
  FILE* p = popen(("CAMELID_MODEL=" + bad + " '" + camelid_binary() + "' generate -p hi -n 2 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  EXPECT_NE(WEXITSTATUS(st), 0);
  EXPECT_NE(r.out.find(bad), std::string::npos) << r.out;
  r = run_camelid("generate -m " + fixture("models/tiny-llama2") + " -p hi -n 2 --temp 0", true);
  EXPECT_EQ(r.status, 0) << r.out;
}
