// Command-line conventions shared by the model subcommands: --help with defaults, short flags,
// one-line argument errors, prompt files, seeds, and generation_config.json sampling defaults.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "cli_runner.h"
#include "model_files.h"

using namespace camelid::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// tiny-llama2 with its own generation_config.json: the other files are links to the fixture.
std::string model_with_generation_config(const TempDir& dir, const std::string& config) {
  for (const auto& e : fs::directory_iterator(fixture("models/tiny-llama2")))
    if (e.path().filename() != "generation_config.json") fs::create_symlink(e.path(), fs::path(dir.str()) / e.path().filename());
  spit(dir / "generation_config.json", config);
  return dir.str();
}

TEST(CliOptions, HelpShowsDefaultsAndShortFlags) {
  auto r = run_camelid("generate --help");
  ASSERT_EQ(r.status, 0) << r.out;
  for (const char* want : {"-t,--threads INT=0", "-c,--ctx INT=0", "-s,--seed", "=random", "-f,--file", "-p,--prompt",
                           "-n,--n-predict INT=128", "-m,--model", "--temp FLOAT=0.8", "--top-k INT=40"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  r = run_camelid("chat --help");
  ASSERT_EQ(r.status, 0) << r.out;
  for (const char* want : {"-t,--threads", "-c,--ctx INT=4096", "-s,--seed", "-n,--max-tokens INT=1024"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  r = run_camelid("perplexity --help");
  EXPECT_NE(r.out.find("-t,--threads"), std::string::npos) << r.out;
}

TEST(CliOptions, ArgumentErrorsAreOneLineAndStatusOne) {
  for (const std::string args : {"generate --no-such-flag", "generate --ids 1,2 -n notanumber", "chat -m x -c notanumber",
                                 "no-such-command", "generate -m x --ids 1 -p hi", ""}) {
    auto r = run_camelid(args, true);
    EXPECT_EQ(r.status, 1) << args << " -> " << r.out;
    EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << args << " -> " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << args << " -> " << r.out;
  }
  EXPECT_EQ(run_camelid("--version").status, 0);
}

TEST(CliOptions, PromptFromAFileEqualsTheSameTextInline) {
  const std::string file = write_temp("prompt.txt", "Once upon a time");
  auto a = run_camelid("generate -m " + kLlama2Arg + " -f " + q(file) + " -n 4 --temp 0 --json");
  auto b = run_camelid("generate -m " + kLlama2Arg + " -p 'Once upon a time' -n 4 --temp 0 --json");
  ASSERT_EQ(a.status, 0) << a.out;
  EXPECT_EQ(json::parse(a.out)["ids"], json::parse(b.out)["ids"]);
  EXPECT_EQ(json::parse(a.out)["prompt_tokens"], json::parse(b.out)["prompt_tokens"]);
}

// Without --seed each run draws a seed and prints it; giving that seed repeats the run.
TEST(CliOptions, RandomSeedIsPrintedAndReproducible) {
  const std::string base = "generate -m " + kLlama2Arg + " --ids 1,450,7483 -n 12 --temp 1.5 --top-k 0 --top-p 1 --min-p 0";
  auto a = run_camelid(base + " --json"), b = run_camelid(base + " --json");
  ASSERT_EQ(a.status, 0) << a.out;
  const json ja = json::parse(a.out), jb = json::parse(b.out);
  EXPECT_NE(ja["seed"], jb["seed"]);
  auto again = run_camelid(base + " --json -s " + std::to_string(ja["seed"].get<uint64_t>()));
  EXPECT_EQ(json::parse(again.out)["ids"], ja["ids"]);
  // Text mode says the seed on stderr.
  auto t = run_camelid(base, true);
  EXPECT_TRUE(std::regex_search(t.out, std::regex("seed: [0-9]+ \\(repeat with --seed\\)"))) << t.out;
  // And the timings, as llama.cpp prints them.
  EXPECT_TRUE(std::regex_search(t.out, std::regex("\nprompt eval: 3 tokens, [0-9.]+ ms, [0-9.]+ tok/s\n"))) << t.out;
  EXPECT_TRUE(std::regex_search(t.out, std::regex("\neval: 11 tokens, [0-9.]+ ms, [0-9.]+ tok/s\n"))) << t.out;
  auto out_only = run_camelid(base);
  EXPECT_EQ(out_only.out.find("eval"), std::string::npos) << "timings go to stderr only";
}

TEST(CliOptions, GenerationConfigSamplingDefaults) {
  TempDir dir;
  const std::string model = q(model_with_generation_config(dir, R"({"do_sample": true, "temperature": 0.7, "top_p": 0.8, "top_k": 5, "repetition_penalty": 1.1})"));
  auto r = run_camelid("generate -m " + model + " --ids 1,2 -n 1", true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("sampling from generation_config.json: temperature 0.7, top_p 0.8, top_k 5, repetition_penalty 1.1"), std::string::npos) << r.out;
  // A flag wins over the file.
  r = run_camelid("generate -m " + model + " --ids 1,2 -n 1 --temp 0 --top-k 3", true);
  EXPECT_NE(r.out.find("sampling from generation_config.json: top_p 0.8, repetition_penalty 1.1\n"), std::string::npos) << r.out;
  // do_sample false: greedy, as transformers decodes; same ids as --temp 0.
  TempDir greedy_dir;
  const std::string greedy = q(model_with_generation_config(greedy_dir, R"({"do_sample": false, "temperature": 0.9})"));
  auto g = run_camelid("generate -m " + greedy + " --ids 1,450,7483 -n 8 --json");
  auto g0 = run_camelid("generate -m " + kLlama2Arg + " --ids 1,450,7483 -n 8 --temp 0 --json");
  ASSERT_EQ(g.status, 0) << g.out;
  EXPECT_EQ(json::parse(g.out)["ids"], json::parse(g0.out)["ids"]);
  // A value out of range is an error naming the file and the field.
  TempDir bad_dir;
  const std::string bad = q(model_with_generation_config(bad_dir, R"({"top_p": 7})"));
  r = run_camelid("generate -m " + bad + " --ids 1,2 -n 1", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("generation_config.json: top_p: 7 is out of range"), std::string::npos) << r.out;
}

// A model without a chat template: chat still runs in the family's format but says so; a path
// that does not exist is an error, not a stand-in template.
TEST(CliOptions, MissingChatTemplateIsNamed) {
  TempDir dir;
  for (const auto& e : fs::directory_iterator(fixture("models/tiny-llama2")))
    if (e.path().filename() != "tokenizer_config.json") fs::create_symlink(e.path(), fs::path(dir.str()) / e.path().filename());
  const std::string input = write_temp("notemplate.txt", "Hi\n");
  auto r = run_camelid("chat -m " + q(dir.str()) + " --temp 0 -n 2 < " + q(input), true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("note: " + dir.str() + ": no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja); using the family's standard chat format"),
            std::string::npos) << r.out;
  const std::string msgs = write_temp("notemplate.json", R"([{"role": "user", "content": "Hi"}])");
  r = run_camelid("template -m /no/such/model --messages " + q(msgs), true);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "error: /no/such/model: no such file or directory\n");
}

}  // namespace
