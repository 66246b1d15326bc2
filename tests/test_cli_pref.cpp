// `camelid dpo` and `camelid train-reward` end to end: text pairs with a real tokenizer are the
// tokenizer's ids; DPO with LoRA (QLoRA over a Q8_0 GGUF, chat pairs through its template) lowers
// the loss and raises the margin; a resumed run (full, LoRA with dropout, reward model) equals
// an uninterrupted one; train-reward learns to rank and writes a reward model.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_runner.h"
#include "fixtures.h"
#include "model/random_model.h"
#include "model_files.h"
#include "tokenizer/tokenizer.h"

using namespace camelid;
using namespace camelid::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kTextPairs =
    R"({"prompt": "The capital of France is", "chosen": " Paris.", "rejected": " a large cheese."})"
    "\n"
    R"({"prompt": "Two plus two equals", "chosen": " four.", "rejected": " seven, probably."})"
    "\n"
    R"({"prompt": "The sky on a clear day is", "chosen": " blue.", "rejected": " green with purple dots."})"
    "\n";

// Five pairs of different lengths over small_spec's vocabulary.
const char* kIdPairs =
    "{\"prompt_ids\":[1,5,6],\"chosen_ids\":[7,8,2],\"rejected_ids\":[9,2]}\n"
    "{\"prompt_ids\":[1,10],\"chosen_ids\":[11,12,13,2],\"rejected_ids\":[14,2]}\n"
    "{\"prompt_ids\":[1,3,4,5,6,7],\"chosen_ids\":[20,2],\"rejected_ids\":[21,22,23,2],\"margin\":0.5}\n"
    "{\"prompt_ids\":[1,30],\"chosen_ids\":[31],\"rejected_ids\":[29]}\n"
    "{\"prompt_ids\":[1,17,18],\"chosen_ids\":[19,24,25,26,2],\"rejected_ids\":[27,28,2]}\n";

// `camelid <command> --init BASE --data PAIRS <flags> --steps 6 --save-every 3` over a small random
// model and kIdPairs straight, and again from its checkpoint-3 with --resume: the resumed steps log
// the same numbers and the files of checkpoint-6 are the same bytes.
void expect_resume_equals_uninterrupted(const std::string& command, const std::string& flags,
                                        const std::vector<std::string>& files) {
  TempDir d;
  write_random_model(d / "base", small_spec());
  spit(d / "pairs.jsonl", kIdPairs);
  const std::string common = command + " --init " + q(d / "base") + " --data " + q(d / "pairs.jsonl") + flags;
  auto a = run_camelid(common + " --steps 6 --save-every 3 --log-json " + q(d / "a.jsonl") + " -o " + q(d / "a"), true);
  ASSERT_EQ(a.status, 0) << a.out;
  fs::create_directories(d / "b");
  fs::copy(d / "a/checkpoint-3", d / "b/checkpoint-3", fs::copy_options::recursive);
  auto b = run_camelid(common + " --steps 6 --save-every 3 --resume " + q(d / "b") + " --log-json " + q(d / "b.jsonl") +
                           " -o " + q(d / "b"),
                       true);
  ASSERT_EQ(b.status, 0) << b.out;
  EXPECT_NE(b.out.find("resumed from"), std::string::npos) << b.out;
  const auto la = json_lines_of_file(d / "a.jsonl"), lb = json_lines_of_file(d / "b.jsonl");
  ASSERT_EQ(la.size(), 6u);
  ASSERT_EQ(lb.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(la[i + 3], lb[i]) << i;
  for (const std::string& f : files)
    EXPECT_EQ(read_file(d / ("a/checkpoint-6/" + f)), read_file(d / ("b/checkpoint-6/" + f))) << f;
  const json sa = json::parse(read_file(d / "a/checkpoint-6/trainer_state.json"));
  const json sb = json::parse(read_file(d / "b/checkpoint-6/trainer_state.json"));
  EXPECT_EQ(sa["history"], sb["history"]);
}

std::string ids_json(const std::vector<int>& ids) { return json(ids).dump(); }

}  // namespace

// Plain-text pairs go through the model's tokenizer: prompt with BOS, each reply as a
// continuation ended by EOS. The same pairs given as ids train identically.
TEST(CliDpo, TextPairsAreTheTokenizersIds) {
  TempDir d;
  spit(d / "text.jsonl", kTextPairs);
  auto tok = Tokenizer::load(kLlama2Dir);
  std::string ids;
  std::istringstream in(kTextPairs);
  for (std::string l; std::getline(in, l);) {
    if (l.empty()) continue;
    const json j = json::parse(l);
    auto reply = [&](const char* k) {
      std::vector<int> r = tok->encode_continuation(j[k].get<std::string>());
      r.push_back(tok->eos_ids().at(0));
      return r;
    };
    ids += "{\"prompt_ids\":" + ids_json(tok->encode(j["prompt"].get<std::string>(), true, false)) +
           ",\"chosen_ids\":" + ids_json(reply("chosen")) + ",\"rejected_ids\":" + ids_json(reply("rejected")) + "}\n";
  }
  spit(d / "ids.jsonl", ids);
  const std::string common = "dpo --init " + q(kLlama2Dir) + " --lora-r 4 --steps 3 -b 3 -t 2 --lr 1e-2 --no-shuffle --beta 0.5";
  auto a = run_camelid(common + " --data " + q(d / "text.jsonl") + " --log-json " + q(d / "a.jsonl"), true);
  ASSERT_EQ(a.status, 0) << a.out;
  EXPECT_NE(a.out.find("dpo: 3 pairs"), std::string::npos) << a.out;
  auto b = run_camelid(common + " --data " + q(d / "ids.jsonl") + " --log-json " + q(d / "b.jsonl"), true);
  ASSERT_EQ(b.status, 0) << b.out;
  const auto la = json_lines_of_file(d / "a.jsonl"), lb = json_lines_of_file(d / "b.jsonl");
  ASSERT_EQ(la.size(), 3u);
  EXPECT_EQ(la, lb);
}

// QLoRA DPO: the frozen base is a Q8_0 GGUF (its tokenizer and chat template in it); the pairs are
// chat prompts; the adapter alone trains (PEFT checkpoint, no model weights).
TEST(CliDpo, QloraOverQ8GgufOnChatPairsLowersTheLossAndRaisesTheMargin) {
  TempDir d;
  spit(d / "chat.jsonl",
       R"({"prompt": [{"role": "user", "content": "Name a fruit."}], "chosen": "Apple.", "rejected": "Gravel."})"
       "\n"
       R"({"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}], "chosen": "Hi!", "rejected": "I refuse to greet anyone today."})"
       "\n");
  auto r = run_camelid("dpo --init " + q(fixture("gguf/qmix-q8_0.gguf")) + " --data " + q(d / "chat.jsonl") +
                           " --lora-r 4 --lora-targets q,v,down --steps 3 -b 2 -t 2 --lr 2e-2 --beta 0.5 "
                           "--log-json " + q(d / "log.jsonl") + " -o " + q(d / "out"),
                       true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("LoRA: r 4"), std::string::npos) << r.out;
  const auto log = json_lines_of_file(d / "log.jsonl");
  ASSERT_EQ(log.size(), 3u);
  // Step 1 starts at the reference (B = 0): loss log 2, margin 0.
  EXPECT_NEAR(log.front()["loss"].get<double>(), std::log(2.0), 1e-6);
  EXPECT_LT(log.back()["loss"].get<double>(), 0.9 * std::log(2.0)) << r.out;
  EXPECT_GT(log.back()["margin"].get<double>(), 0.0) << r.out;
  EXPECT_TRUE(fs::exists(d / "out/checkpoint-3/adapter_config.json"));
  EXPECT_TRUE(fs::exists(d / "out/checkpoint-3/adapter_model.safetensors"));
  EXPECT_FALSE(fs::exists(d / "out/checkpoint-3/model.safetensors"));
  auto g = run_camelid("generate -m " + q(fixture("gguf/qmix-q8_0.gguf")) + " --lora " + q(d / "out/checkpoint-3") +
                       " --ids 1,2,3 -n 2 --temp 0");
  EXPECT_EQ(g.status, 0) << g.out;
}

TEST(CliDpo, LoraResumeEqualsUninterrupted) {
  expect_resume_equals_uninterrupted(
      "dpo",
      " --lora-r 4 --lora-dropout 0.1 --lora-targets q,k,v,o,gate,up,down -b 2 --grad-accum 2 -t 2 --lr 5e-3 "
          "--lr-schedule cosine --warmup 2 --seed 5 --beta 0.3",
      {"adapter_model.safetensors", "optimizer.safetensors"});
}

TEST(CliDpo, FullResumeEqualsUninterrupted) {
  expect_resume_equals_uninterrupted("dpo", " -b 2 -t 2 --lr 3e-3 --weight-decay 0.01 --seed 9",
                                     {"model.safetensors", "optimizer.safetensors"});
}

TEST(CliDpo, ResumeRefusesAnotherRunsCheckpoint) {
  TempDir d;
  write_random_model(d / "base", small_spec());
  spit(d / "pairs.jsonl", kIdPairs);
  const std::string common = " --init " + q(d / "base") + " --data " + q(d / "pairs.jsonl") + " -b 2 -t 2";
  ASSERT_EQ(run_camelid("train-reward" + common + " --steps 2 -o " + q(d / "rm")).status, 0);
  auto r = run_camelid("dpo" + common + " --steps 4 --resume " + q(d / "rm"), true);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("camelid-reward-state"), std::string::npos) << r.out;
  ASSERT_EQ(run_camelid("dpo" + common + " --steps 2 -o " + q(d / "dpo")).status, 0);
  r = run_camelid("dpo" + common + " --steps 4 --beta 0.7 --resume " + q(d / "dpo"), true);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("--beta"), std::string::npos) << r.out;
}

// train-reward from the command line on text pairs (the model's tokenizer): a new score head
// learns to rank chosen above rejected; the checkpoint is a LlamaForSequenceClassification.
TEST(CliTrainReward, LearnsToRankTextPairs) {
  TempDir d;
  spit(d / "text.jsonl", kTextPairs);
  auto r = run_camelid("train-reward --init " + q(kLlama2Dir) + " --data " + q(d / "text.jsonl") +
                           " --steps 12 -b 3 -t 2 --lr 1e-2 --log-json " + q(d / "log.jsonl") + " -o " + q(d / "out"),
                       true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("3 pairs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("a new score head"), std::string::npos) << r.out;
  const auto log = json_lines_of_file(d / "log.jsonl");
  ASSERT_EQ(log.size(), 12u);
  EXPECT_LT(log.back()["loss"].get<double>(), 0.5 * log.front()["loss"].get<double>()) << r.out;
  EXPECT_EQ(log.back()["accuracy"].get<double>(), 1.0) << r.out;
  EXPECT_GT(log.back()["margin"].get<double>(), 0.0);
  const json cfg = json::parse(read_file(d / "out/checkpoint-12/config.json"));
  EXPECT_EQ(cfg["architectures"][0], "LlamaForSequenceClassification") << cfg;
  EXPECT_TRUE(fs::exists(d / "out/checkpoint-12/tokenizer.json"));
}

TEST(CliTrainReward, ResumeEqualsUninterrupted) {
  expect_resume_equals_uninterrupted("train-reward",
                                     " -b 2 --grad-accum 2 -t 2 --lr 3e-3 --lr-schedule cosine --warmup 2 --seed 4",
                                     {"model.safetensors", "optimizer.safetensors"});
}
