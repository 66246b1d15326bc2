// `camelid finetune` end to end: LoRA and full SFT memorise a tiny chat set and `generate`
// (--lora OUT / -m OUT) then reproduces the answer greedily; QLoRA over a Q8_0 GGUF reduces the
// loss; a resumed LoRA run (with dropout) equals an uninterrupted one; bad data names the line.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chat/chat_prompt.h"
#include "chat/chat_template.h"
#include "cli_runner.h"
#include "fixtures.h"
#include "model/random_model.h"
#include "model_files.h"
#include "tokenizer/tokenizer.h"
#include "core/mmap_file.h"
#include "model/safetensors.h"
#include "train/distributed.h"
#include "train/sft_data.h"

using namespace camelid;
using namespace camelid::test;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

const char* kChat =
    R"({"messages": [{"role": "user", "content": "What is the secret word?"}, {"role": "assistant", "content": "Pineapple umbrella."}]})"
    "\n"
    R"({"instruction": "Name a colour.", "output": "Blue sky."})"
    "\n";

// The first example's prompt ids (with the generation prompt) and its answer tokens before the
// end of turn, as the model's template gives them.
std::pair<std::vector<int>, std::vector<int>> prompt_and_answer() {
  auto tok = Tokenizer::load(kLlama2Dir);
  const ChatTemplate tmpl = ChatTemplate::from_model_dir(kLlama2Dir);
  train::SftRenderer r;
  r.tok = tok.get(), r.tmpl = &tmpl, r.vocab = tok->vocab_size();
  const auto ex = train::sft_examples_from_text(kChat, "chat", r);
  std::vector<int> prompt, answer;
  for (size_t i = 0; i < ex[0].ids.size(); ++i) {
    if (ex[0].labels[i] < 0 && answer.empty()) prompt.push_back(ex[0].ids[i]);
    else if (ex[0].labels[i] >= 0) answer.push_back(ex[0].ids[i]);
  }
  answer.pop_back();  // </s>
  return {prompt, answer};
}

std::string ids_arg(const std::vector<int>& ids) {
  std::string s;
  for (int i : ids) s += (s.empty() ? "" : ",") + std::to_string(i);
  return s;
}

void memorise(const std::string& mode_flags, int steps, const std::string& model_flag) {
  TempDir d;
  spit(d / "chat.jsonl", kChat);
  auto r = run_camelid("finetune -m " + q(kLlama2Dir) + " --data " + q(d / "chat.jsonl") + mode_flags + " --steps " +
                           std::to_string(steps) + " -b 2 -t 2 --lr-schedule constant --weight-decay 0 --log-json " +
                           q(d / "log.jsonl") + " -o " + q(d / "out"),
                       true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("2 examples"), std::string::npos) << r.out;
  const auto log = json_lines_of_file(d / "log.jsonl");
  ASSERT_EQ(log.size(), size_t(steps));
  EXPECT_LT(log.back()["loss"].get<double>(), 0.05) << r.out;
  const auto [prompt, answer] = prompt_and_answer();
  ASSERT_GT(answer.size(), 3u);
  auto g = run_camelid("generate -m " + (model_flag == "-m" ? q(d / "out") : q(kLlama2Dir) + " --lora " + q(d / "out")) +
                       " --ids " + ids_arg(prompt) + " -n " + std::to_string(answer.size()) + " --temp 0 --json");
  ASSERT_EQ(g.status, 0) << g.out;
  EXPECT_EQ(json::parse(g.out)["ids"].get<std::vector<int>>(), answer) << g.out;
}

TEST(CliFinetune, LoraMemorisesAndGenerateWithTheAdapterRepeatsIt) {
  memorise(" --lora-r 8 --lora-alpha 16 --lora-targets q,k,v,o,gate,up,down --lr 1e-2", 30, "--lora");
}

TEST(CliFinetune, FullFineTuningMemorisesAndTheOutputIsAModel) {
  memorise(" --lr 1e-2", 15, "-m");
}

// QLoRA: the frozen base is Q8_0 (every matrix quantized); the adapter trains over it.
TEST(CliFinetune, QloraOverQ8GgufReducesTheLoss) {
  TempDir d;
  spit(d / "chat.jsonl", kChat);
  auto r = run_camelid("finetune -m " + q(fixture("gguf/qmix-q8_0.gguf")) + " --data " + q(d / "chat.jsonl") +
                           " --lora-r 4 --lora-targets q,v --steps 6 -b 2 -t 2 --lr 1e-2 --lr-schedule constant "
                           "--log-json " + q(d / "log.jsonl") + " -o " + q(d / "out"),
                       true);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto log = json_lines_of_file(d / "log.jsonl");
  ASSERT_EQ(log.size(), 6u);
  EXPECT_LT(log.back()["loss"].get<double>(), 0.8 * log.front()["loss"].get<double>()) << r.out;
  EXPECT_TRUE(fs::exists(d / "out/adapter_config.json"));
  auto g = run_camelid("generate -m " + q(fixture("gguf/qmix-q8_0.gguf")) + " --lora " + q(d / "out") +
                       " --ids 1,2,3 -n 2 --temp 0");
  EXPECT_EQ(g.status, 0) << g.out;
}

// Pre-tokenized examples over a small random model: 3 steps, then resume to 6, equals 6 straight
// (losses and adapter bytes), with LoRA dropout on.
TEST(CliFinetune, LoraResumeEqualsUninterrupted) {
  TempDir d;
  write_random_model(d / "base", small_spec());
  std::string data;
  uint64_t x = 7;
  for (int e = 0; e < 7; ++e) {
    json ids = json::array(), labels = json::array();
    const int n = 6 + e % 4;
    for (int i = 0; i < n; ++i) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      const int id = int((x >> 33) % 32);
      ids.push_back(id), labels.push_back(i < n / 2 ? -100 : id);
    }
    data += json{{"input_ids", ids}, {"labels", labels}}.dump() + "\n";
  }
  spit(d / "ids.jsonl", data);
  const std::string common = "finetune -m " + q(d / "base") + " --data " + q(d / "ids.jsonl") +
                             " --lora-r 4 --lora-dropout 0.1 --lora-targets q,k,v,o,gate,up,down --steps 6 -b 2 "
                             "--grad-accum 2 -t 2 --lr 5e-3 --warmup 2 --seed 5 --save-every 3";
  auto a = run_camelid(common + " --log-json " + q(d / "a.jsonl") + " -o " + q(d / "a"), true);
  ASSERT_EQ(a.status, 0) << a.out;
  fs::create_directories(d / "b");
  fs::copy(d / "a/checkpoint-3", d / "b/checkpoint-3", fs::copy_options::recursive);
  auto b = run_camelid(common + " --resume " + q(d / "b") + " --log-json " + q(d / "b.jsonl") + " -o " + q(d / "b"), true);
  ASSERT_EQ(b.status, 0) << b.out;
  EXPECT_NE(b.out.find("resumed from"), std::string::npos) << b.out;
  const auto la = json_lines_of_file(d / "a.jsonl"), lb = json_lines_of_file(d / "b.jsonl");
  ASSERT_EQ(la.size(), 6u);
  ASSERT_EQ(lb.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(la[i + 3]["loss"], lb[i]["loss"]) << i;
    EXPECT_EQ(la[i + 3]["grad_norm"], lb[i]["grad_norm"]) << i;
  }
  EXPECT_EQ(read_file(d / "a/checkpoint-6/adapter_model.safetensors"), read_file(d / "b/checkpoint-6/adapter_model.safetensors"));
  EXPECT_EQ(read_file(d / "a/checkpoint-6/optimizer.safetensors"), read_file(d / "b/checkpoint-6/optimizer.safetensors"));
}

// Data parallel: `mpirun -np 2 camelid finetune --lora-r` follows the one-process run (loss and
// grad norm within 1e-5 relative, the same adapter within 1e-5). Skipped without mpirun or an MPI
// build, except under CI=true.
TEST(CliFinetune, LoraTwoRanksEqualOneProcess) {
  const bool ci = std::getenv("CI") && std::string(std::getenv("CI")) == "true";
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0 || !train::built_with_mpi()) {
    if (ci) FAIL() << "CI needs mpirun and an MPI build";
    GTEST_SKIP() << "no mpirun or camelid built without MPI";
  }
  TempDir d;
  write_random_model(d / "base", small_spec());
  std::string data;
  for (int e = 0; e < 8; ++e) {
    json ids = json::array(), labels = json::array();
    for (int i = 0; i < 5 + e % 3; ++i) ids.push_back((e * 7 + i * 3) % 32), labels.push_back(i < 2 ? -100 : (e * 7 + i * 3) % 32);
    data += json{{"input_ids", ids}, {"labels", labels}}.dump() + "\n";
  }
  spit(d / "ids.jsonl", data);
  const std::string args = "finetune -m " + q(d / "base") + " --data " + q(d / "ids.jsonl") +
                           " --lora-r 4 --lora-targets q,v,down --steps 4 -b 2 --grad-accum 2 -t 1 --lr 1e-2 --seed 3";
  auto one = run_camelid(args + " --log-json " + q(d / "one.jsonl") + " -o " + q(d / "one"), true);
  ASSERT_EQ(one.status, 0) << one.out;
  // Open MPI's own allocations at exit read as leaks under LeakSanitizer (`train` shows the same).
  FILE* p = popen(("ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 --oversubscribe '" +
                   camelid_binary() + "' " + args + " --log-json " + q(d / "two.jsonl") + " -o " + q(d / "two") + " 2>&1")
                      .c_str(),
                  "r");
  ASSERT_TRUE(p);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  ASSERT_EQ(pclose(p), 0) << out;
  const auto a = json_lines_of_file(d / "one.jsonl"), b = json_lines_of_file(d / "two.jsonl");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 0; i < 4; ++i)
    for (const char* k : {"loss", "grad_norm"})
      EXPECT_NEAR(a[i][k].get<double>(), b[i][k].get<double>(), 1e-5 * std::abs(a[i][k].get<double>())) << k << " " << i;
  MappedFile fa(d / "one/adapter_model.safetensors"), fb(d / "two/adapter_model.safetensors");
  const auto ta = parse_safetensors(fa), tb = parse_safetensors(fb);
  ASSERT_EQ(ta.size(), tb.size());
  for (auto& [name, e] : ta) {
    ASSERT_TRUE(tb.count(name)) << name;
    ASSERT_EQ(e.nbytes, tb.at(name).nbytes);
    const float* x = reinterpret_cast<const float*>(e.data);
    const float* y = reinterpret_cast<const float*>(tb.at(name).data);
    for (size_t i = 0; i < e.nbytes / 4; ++i) EXPECT_NEAR(x[i], y[i], 1e-5) << name;
  }
}

TEST(CliFinetune, BadDataNamesTheLine) {
  TempDir d;
  spit(d / "bad.jsonl", std::string(kChat) + "{\"messages\": [oops]}\n");
  auto r = run_camelid("finetune -m " + q(kLlama2Dir) + " --data " + q(d / "bad.jsonl") + " --steps 1", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("bad.jsonl:3"), std::string::npos) << r.out;
  spit(d / "none.jsonl", R"({"messages": [{"role": "user", "content": "hi"}]})" "\n");
  r = run_camelid("finetune -m " + q(kLlama2Dir) + " --data " + q(d / "none.jsonl") + " --steps 1", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("none.jsonl:1: no assistant message"), std::string::npos) << r.out;
}

}  // namespace
