// `camelid train-tokenizer` through the binary: the written directory loads in `tokenize`,
// `detokenize` and `template`; bad flags and files fail with one line naming them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "cli_runner.h"

using namespace camelid::test;
using json = nlohmann::json;

namespace {

std::string corpus() {
  std::string text;
  for (int i = 0; i < 40; ++i)
    text += "Llamas live in herds " + std::to_string(i) + " and carry packs across the Andes. Les lamas vivent en troupeaux.\n";
  return text + "羊驼 🦙\n";
}

std::string out_dir(const std::string& name) {
  const auto p = std::filesystem::path(camelid::test::scratch_dir()) / ("tt_" + name);
  std::filesystem::remove_all(p);
  return p.string();
}

std::string csv(const json& ids) {
  std::string s;
  for (int id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

TEST(CliTrainTokenizer, TrainsAndLoads) {
  const std::string in = write_temp("tt_corpus.txt", corpus());
  std::string first_sp;
  for (const char* type : {"sentencepiece-bpe", "bpe-bytelevel"}) {
    const std::string out = out_dir(type);
    auto r = run_camelid("train-tokenizer -o " + q(out) + " --vocab-size 320 --type " + type + " --json " + q(in));
    ASSERT_EQ(r.status, 0) << r.out;
    const json s = json::parse(r.out);
    EXPECT_EQ(s["vocab_size"], 320) << type;
    EXPECT_EQ(s["input_bytes"], corpus().size());
    EXPECT_TRUE(std::filesystem::exists(out + "/tokenizer_config.json"));
    if (first_sp.empty()) first_sp = read_file(out + "/tokenizer.json");

    const std::string text = "Llamas carry packs, 羊驼 🦙 and ünseen çharacters!";
    r = run_camelid("tokenize -m " + q(out) + " --text " + q(text) + " --json");
    ASSERT_EQ(r.status, 0) << r.out;
    const json ids = json::parse(r.out)["ids"];
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids[0], std::string(type) == "bpe-bytelevel" ? 315 : 1) << "BOS";
    r = run_camelid("detokenize -m " + q(out) + " --skip-special --json --ids " + csv(ids));
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(json::parse(r.out)["text"], text) << type;

    const std::string msgs = write_temp("tt_msgs.json", R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}])");
    r = run_camelid("template -m " + q(out) + " --messages " + q(msgs) + " --json");
    ASSERT_EQ(r.status, 0) << r.out;
    const std::string rendered = json::parse(r.out)["rendered"];
    if (std::string(type) == "bpe-bytelevel")
      EXPECT_EQ(rendered, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                          "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    else
      EXPECT_EQ(rendered, "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
  }
  // Same input, same files.
  const std::string a = out_dir("again");
  ASSERT_EQ(run_camelid("train-tokenizer -o " + q(a) + " --vocab-size 320 " + q(in)).status, 0);
  EXPECT_EQ(read_file(a + "/tokenizer.json"), first_sp);
}

TEST(CliTrainTokenizer, BadInputs) {
  const std::string in = write_temp("tt_small.txt", "some text\n");
  const std::string out = out_dir("bad");
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    auto r = run_camelid("train-tokenizer -o " + q(out) + " " + args, true);
    EXPECT_EQ(r.status, 1) << args;
    EXPECT_NE(r.out.find("error: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << r.out;
  };
  expect_error("--vocab-size 100 " + q(in), "--vocab-size");
  expect_error("--vocab-size 2000000 " + q(in), "--vocab-size");
  expect_error("--vocab-size 300 --type wordpiece " + q(in), "--type");
  expect_error("--vocab-size 300 --min-frequency 0 " + q(in), "--min-frequency");
  expect_error("--vocab-size 300 /nonexistent/text.txt", "/nonexistent/text.txt");
  expect_error("--vocab-size 300 " + q(write_temp("tt_empty.txt", "")), "tt_empty.txt is empty");
  EXPECT_FALSE(std::filesystem::exists(out + "/tokenizer.json"));
}

TEST(CliTrainTokenizer, MaxBytesAndSummary) {
  const std::string in = write_temp("tt_corpus2.txt", corpus());
  const std::string out = out_dir("max");
  auto r = run_camelid("train-tokenizer -o " + q(out) + " --vocab-size 300 --max-bytes 1000 " + q(in));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("wrote "), std::string::npos) << r.out;
  r = run_camelid("train-tokenizer -o " + q(out) + " --vocab-size 300 --max-bytes 1000 --json " + q(in));
  const json s = json::parse(r.out);
  EXPECT_LE(s["input_bytes"].get<int>(), 1000);
  EXPECT_GT(s["input_bytes"].get<int>(), 900);
}

}  // namespace
