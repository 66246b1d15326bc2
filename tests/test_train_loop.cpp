// The training loop over a tiny model: memorisation, resume == uninterrupted, NaN stop, and
// checkpoints that survive a failed write.
#include <gtest/gtest.h>

#include <filesystem>

#include "model/params.h"
#include "model/weights.h"
#include "model_files.h"
#include "train/trainer.h"

using namespace camelid;
using namespace camelid::train;
using camelid::test::TempDir;
namespace fs = std::filesystem;

namespace {

ModelConfig tiny_config() {
  ModelConfig c;
  c.vocab_size = 32, c.dim = 32, c.hidden_dim = 48, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2;
  c.head_dim = 8, c.max_seq_len = 64, c.bos_id = 1, c.eos_ids = {2};
  return c;
}

// Two 16-token sequences over and over: windows at stride 16 alternate between them.
std::vector<int> two_sequences(int repeats) {
  std::vector<int> a, s;
  for (int i = 0; i < 16; ++i) a.push_back((i * 7 + 3) % 32);
  for (int i = 0; i < 16; ++i) a.push_back((i * 11 + 5) % 32);
  for (int r = 0; r < repeats; ++r) s.insert(s.end(), a.begin(), a.end());
  s.push_back(a[0]);
  return s;
}

TrainOptions small_options(int64_t steps) {
  TrainOptions o;
  o.batch = 2, o.grad_accum = 2, o.steps = steps, o.seed = 11;
  o.schedule.lr = 1e-2, o.schedule.warmup = 2, o.schedule.min_lr = 1e-3;
  o.adamw.weight_decay = 0.01;
  return o;
}

std::vector<double> run_losses(Trainer& t) {
  std::vector<double> losses;
  t.run([&](const StepLog& l) { losses.push_back(l.loss); });
  return losses;
}

ParamSet load_params(const std::string& dir) { return params_from_weights(*load_model(dir)); }

}  // namespace

TEST(TrainLoop, MemorisesTwoSequences) {
  TrainOptions o = small_options(150);
  o.adamw.weight_decay = 0;
  Trainer t(params_init(tiny_config(), 3), Windows(two_sequences(8), 16, "toy"), std::nullopt, o);
  const auto losses = run_losses(t);
  ASSERT_EQ(losses.size(), 150u);
  EXPECT_GT(losses.front(), 3.0);
  // Every target is determined by the tokens before it (the two sequences start differently).
  EXPECT_LT(losses.back(), 0.05) << "first " << losses.front();
}

TEST(TrainLoop, ResumeContinuesBitwise) {
  TempDir d;
  TrainOptions o = small_options(8);
  o.save_every = 4, o.out_dir = d / "run";
  o.eval_every = 4, o.eval_batches = 1;
  const auto data = two_sequences(6);
  std::vector<int> val(data.begin(), data.begin() + 40);
  Trainer a(params_init(tiny_config(), 3), Windows(data, 16, "toy"), Windows(val, 16, "val"), o);
  const auto full = run_losses(a);
  ASSERT_TRUE(fs::exists(d / "run/checkpoint-4/optimizer.safetensors"));
  ASSERT_TRUE(fs::exists(d / "run/checkpoint-8/model.safetensors"));
  ASSERT_TRUE(fs::exists(d / "run/loss.svg"));

  o.out_dir = d / "resumed";
  const std::string ck = resolve_checkpoint(d / "run/checkpoint-4");
  Trainer b(load_params(ck), Windows(data, 16, "toy"), Windows(val, 16, "val"), o);
  b.resume(ck);
  EXPECT_EQ(b.steps_done(), 4);
  const auto rest = run_losses(b);
  ASSERT_EQ(rest.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(rest[i], full[4 + i]) << "step " << 5 + i;  // bitwise
  EXPECT_EQ(camelid::test::read_file(d / "run/checkpoint-8/model.safetensors"),
            camelid::test::read_file(d / "resumed/checkpoint-8/model.safetensors"));
  EXPECT_EQ(camelid::test::read_file(d / "run/checkpoint-8/optimizer.safetensors"),
            camelid::test::read_file(d / "resumed/checkpoint-8/optimizer.safetensors"));
  // The out directory itself resolves to its newest checkpoint.
  EXPECT_EQ(fs::path(resolve_checkpoint(d / "run")).filename(), "checkpoint-8");

  // A different data order is refused.
  TrainOptions other = o;
  other.batch = 1;
  Trainer c(load_params(ck), Windows(data, 16, "toy"), std::nullopt, other);
  camelid::test::expect_error([&] { c.resume(ck); }, {"global_rows", "--batch"});
}

TEST(TrainLoop, NonFiniteLossStopsAndKeepsTheLastGoodCheckpoint) {
  TempDir d;
  {  // A NaN weight: the first step fails, nothing is written.
    ParamSet ps = params_init(tiny_config(), 3);
    ps.at("model.norm.weight").value[0] = NAN;
    TrainOptions o = small_options(3);
    o.out_dir = d / "nan";
    Trainer t(std::move(ps), Windows(two_sequences(2), 16, "toy"), std::nullopt, o);
    camelid::test::expect_error([&] { t.run({}); }, {"step 1", "not finite", "no checkpoint"});
    EXPECT_FALSE(fs::exists(d / "nan/checkpoint-1"));
  }
  {  // A rate that blows the weights up: the run stops at the first bad step.
    TrainOptions o = small_options(6);
    o.schedule.kind = LrSchedule::Kind::Constant, o.schedule.warmup = 0, o.schedule.lr = 1e30;
    o.clip = 0, o.adamw.weight_decay = 0;
    o.save_every = 1, o.out_dir = d / "blowup";
    Trainer t(params_init(tiny_config(), 3), Windows(two_sequences(2), 16, "toy"), std::nullopt, o);
    try {
      t.run({});
      FAIL() << "expected a non-finite loss";
    } catch (const Error& e) {
      const int64_t good = t.steps_done();
      ASSERT_GE(good, 1);
      const std::string msg = e.what();
      EXPECT_NE(msg.find("step " + std::to_string(good + 1)), std::string::npos) << msg;
      EXPECT_NE(msg.find("checkpoint-" + std::to_string(good)), std::string::npos) << msg;
      EXPECT_TRUE(fs::exists(d / ("blowup/checkpoint-" + std::to_string(good))));
      EXPECT_FALSE(fs::exists(d / ("blowup/checkpoint-" + std::to_string(good + 1))));
    }
  }
}

TEST(TrainLoop, FailedCheckpointKeepsThePreviousOne) {
  TempDir d;
  TrainOptions o = small_options(4);
  o.save_every = 2, o.out_dir = d / "run";
  int fail_on = 0;
  o.source.before_write = [&](const std::string& path) {
    if (fail_on > 0 && path.find("checkpoint-" + std::to_string(fail_on)) != std::string::npos &&
        path.find("optimizer") != std::string::npos)
      throw Error(path + ": write failed (No space left on device)");
  };
  fail_on = 4;
  Trainer t(params_init(tiny_config(), 3), Windows(two_sequences(3), 16, "toy"), std::nullopt, o);
  camelid::test::expect_error([&] { t.run({}); }, {"checkpoint-4", "not written", "No space left", "kept"});
  EXPECT_TRUE(fs::exists(d / "run/checkpoint-2/trainer_state.json"));
  EXPECT_EQ(read_trainer_state(d / "run/checkpoint-2")["step"], 2);
  EXPECT_NO_THROW(load_model(d / "run/checkpoint-2"));
  EXPECT_FALSE(fs::exists(d / "run/checkpoint-4"));
  for (auto& e : fs::directory_iterator(d / "run"))
    EXPECT_NE(e.path().filename().string().rfind(".tmp", 0), 0u) << "left behind: " << e.path();

  // An --out below a regular file cannot be created: the error names it.
  camelid::test::spit(d / "file", "x");
  TrainOptions o2 = small_options(1);
  o2.out_dir = d / "file/out";
  Trainer t2(params_init(tiny_config(), 3), Windows(two_sequences(2), 16, "toy"), std::nullopt, o2);
  camelid::test::expect_error([&] { t2.run({}); }, {"file/out", "not written"});

  // A real full device.
  if (fs::exists("/dev/full")) camelid::test::expect_error([] { write_file_durable("/dev/full", std::string(1 << 16, 'x')); }, {"/dev/full", "No space left"});
}
