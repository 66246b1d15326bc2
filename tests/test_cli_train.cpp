// `camelid train` end to end: from scratch and --init, the log, the picture, checkpoints that
// camelid loads, resume, data errors, Ctrl-C.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_runner.h"
#include "fixtures.h"
#include "model_files.h"

using namespace camelid::test;
namespace fs = std::filesystem;

namespace {

std::string ids_json(int n, int vocab) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += (i ? "," : "") + std::to_string((i * 7 + i / 5) % vocab);
  return s + "]";
}

const std::string kTiny = " --dim 32 --layers 1 --heads 2 --hidden 48 --vocab 64 --ctx 64 -T 16 -b 2 -t 2";

}  // namespace

TEST(CliTrain, FromScratchWritesLogCheckpointsAndPicture) {
  TempDir d;
  spit(d / "ids.json", ids_json(400, 64));
  auto r = run_camelid("train --data " + q(d / "ids.json") + kTiny + " --steps 6 --save-every 3 --eval-every 2 " +
                           "--val-fraction 0.2 --warmup 2 --lr 1e-2 --log-json " + q(d / "log.jsonl") + " -o " + q(d / "out"),
                       true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("tokens/s"), std::string::npos) << r.out;
  const auto log = json_lines_of_file(d / "log.jsonl");
  ASSERT_EQ(log.size(), 6u);
  for (size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i]["step"], i + 1);
    for (const char* k : {"loss", "lr", "grad_norm", "tokens_per_s"}) EXPECT_TRUE(log[i][k].is_number()) << k;
    EXPECT_EQ(log[i].contains("val_loss"), (i + 1) % 2 == 0) << log[i];
  }
  EXPECT_DOUBLE_EQ(log[0]["lr"].get<double>(), 5e-3);
  for (const char* f : {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"}) {
    EXPECT_TRUE(fs::exists(d / ("out/checkpoint-3/" + std::string(f)))) << f;
    EXPECT_TRUE(fs::exists(d / ("out/checkpoint-6/" + std::string(f)))) << f;
  }
  EXPECT_NE(read_file(d / "out/loss.svg").find("<svg"), std::string::npos);
  // The checkpoint is a model camelid runs.
  auto g = run_camelid("generate -m " + q(d / "out/checkpoint-6") + " --ids 1,2,3 -n 3 --temp 0", true);
  EXPECT_EQ(g.status, 0) << g.out;

  // Resume to 8 steps: the log continues.
  r = run_camelid("train --resume " + q(d / "out") + " --data " + q(d / "ids.json") +
                      " -T 16 -b 2 -t 2 --steps 8 --eval-every 2 --val-fraction 0.2 --warmup 2 --lr 1e-2 --log-json " +
                      q(d / "log.jsonl") + " -o " + q(d / "out"),
                  true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("resumed from"), std::string::npos) << r.out;
  EXPECT_EQ(json_lines_of_file(d / "log.jsonl").size(), 8u);
  EXPECT_TRUE(fs::exists(d / "out/checkpoint-8/model.safetensors"));
}

TEST(CliTrain, InitFromAModelWithTextData) {
  TempDir d;
  spit(d / "a.txt", "The quick brown fox jumps over the lazy dog. The quick brown fox jumps again and again.");
  auto r = run_camelid("train --init " + q(fixture("models/tiny-llama2")) + " --data " + q(d / "a.txt") +
                           " -T 8 -b 1 -t 2 --steps 2 -o " + q(d / "out"),
                       true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(fs::exists(d / "out/checkpoint-2/tokenizer.json"));  // tokenizer files travel along
  EXPECT_TRUE(fs::exists(d / "out/checkpoint-2/tokenizer_config.json"));
}

TEST(CliTrain, BadDataIsOneLineNamingIt) {
  TempDir d;
  spit(d / "odd.bin", "abcde");
  auto r = run_camelid("train --data " + q(d / "odd.bin") + kTiny + " --steps 1", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("odd.bin"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("uint32"), std::string::npos) << r.out;

  spit(d / "big.json", "[1, 2, 64]");
  r = run_camelid("train --data " + q(d / "big.json") + kTiny + " --steps 1", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("token 2"), std::string::npos) << r.out;

  spit(d / "empty.json", "[]");
  r = run_camelid("train --data " + q(d / "empty.json") + kTiny + " --steps 1", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("no tokens"), std::string::npos) << r.out;

  spit(d / "short.json", "[1, 2, 3]");
  r = run_camelid("train --data " + q(d / "short.json") + kTiny + " --steps 1", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("fewer than one window"), std::string::npos) << r.out;

  spit(d / "t.txt", "some text");
  r = run_camelid("train --data " + q(d / "t.txt") + kTiny + " --steps 1", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("tokenizer"), std::string::npos) << r.out;

  r = run_camelid("train --data " + q(d / "short.json") + " --init x --preset tiny", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("from scratch"), std::string::npos) << r.out;
}

TEST(CliTrain, CtrlCWritesACheckpoint) {
  TempDir d;
  spit(d / "ids.json", ids_json(400, 64));
  const std::string cmd = "'" + camelid_binary() + "' train --data " + q(d / "ids.json") + kTiny +
                          " --steps 1000000 --log-json " + q(d / "log.jsonl") + " -o " + q(d / "out") + " >" +
                          q(d / "stdout") + " 2>&1 & pid=$!; i=0; until [ -s " + q(d / "log.jsonl") +
                          " ] || [ $i -gt 600 ]; do sleep 0.05; i=$((i+1)); done; kill -INT $pid; wait $pid; exit $?";
  const int st = std::system(("sh -c " + q(cmd)).c_str());
  EXPECT_EQ(WEXITSTATUS(st), 130) << read_file(d / "stdout");
  EXPECT_NE(read_file(d / "stdout").find("interrupted at step"), std::string::npos) << read_file(d / "stdout");
  bool found = false;
  for (auto& e : fs::directory_iterator(d / "out"))
    found |= e.path().filename().string().rfind("checkpoint-", 0) == 0 && fs::exists(e.path() / "trainer_state.json");
  EXPECT_TRUE(found);
}
