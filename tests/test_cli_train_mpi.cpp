// Data-parallel training: `mpirun -np 2 camelid train` follows the one-process run's loss and grad
// norm step for step (within 1e-5 relative) and ends with the same weights; rank 0 alone writes.
// Skipped without mpirun or an MPI build, except in CI (CI=true), where both must be there.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_runner.h"
#include "model/safetensors.h"
#include "model_files.h"
#include "train/distributed.h"

using namespace camelid;
using namespace camelid::test;

namespace {

bool have_mpirun() { return std::system("command -v mpirun >/dev/null 2>&1") == 0; }

std::string mpirun(int n) {
  // Open MPI refuses root without these; --oversubscribe: more ranks than cores is fine here.
  // Open MPI's own allocations at exit read as leaks to LeakSanitizer (sanitizer builds).
  return "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 OMPI_ALLOW_RUN_AS_ROOT=1 "
         "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np " + std::to_string(n) +
         " --oversubscribe '" + camelid_binary() + "' ";
}

CmdResult sh(const std::string& cmd) {
  CmdResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace

TEST(CliTrainMpi, TwoRanksEqualOneProcess) {
  const bool ci = std::getenv("CI") && std::string(std::getenv("CI")) == "true";
  if (!have_mpirun() || !train::built_with_mpi()) {
    if (ci) FAIL() << "CI needs mpirun and an MPI build (scripts/install-deps.sh installs Open MPI)";
    GTEST_SKIP() << "no mpirun or camelid built without MPI";
  }
  TempDir d;
  std::string ids = "[";
  for (int i = 0; i < 1500; ++i) ids += (i ? "," : "") + std::to_string((i * 31 + i / 7) % 96);
  spit(d / "ids.json", ids + "]");
  const std::string args = "train --data " + q(d / "ids.json") +
                           " --dim 32 --layers 2 --heads 4 --kv-heads 2 --hidden 64 --vocab 96 --ctx 64 -T 24 -b 2"
                           " --grad-accum 2 --steps 10 --no-shuffle --warmup 2 --lr 3e-3 --val-fraction 0.1"
                           " --eval-every 5 --eval-batches 2 -t 1 ";
  auto one = run_camelid(args + "--log-json " + q(d / "one.jsonl") + " -o " + q(d / "one"), true);
  ASSERT_EQ(one.status, 0) << one.out;
  auto two = sh(mpirun(2) + args + "--log-json " + q(d / "two.jsonl") + " -o " + q(d / "two"));
  ASSERT_EQ(two.status, 0) << two.out;
  EXPECT_NE(two.out.find("data parallel: 2 ranks"), std::string::npos) << two.out;

  const auto a = json_lines_of_file(d / "one.jsonl"), b = json_lines_of_file(d / "two.jsonl");
  ASSERT_EQ(a.size(), 10u);
  ASSERT_EQ(b.size(), 10u);  // rank 0 alone logs
  auto rel = [](double x, double y) { return std::fabs(x - y) / std::max(1e-12, std::fabs(x)); };
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_LT(rel(a[i]["loss"], b[i]["loss"]), 1e-5) << i;
    EXPECT_LT(rel(a[i]["grad_norm"], b[i]["grad_norm"]), 1e-5) << i;
    ASSERT_EQ(a[i].contains("val_loss"), b[i].contains("val_loss"));
    if (a[i].contains("val_loss")) {
      EXPECT_LT(rel(a[i]["val_loss"], b[i]["val_loss"]), 1e-5) << i;
    }
  }
  // The same final weights.
  MappedFile fa(d / "one/checkpoint-10/model.safetensors"), fb(d / "two/checkpoint-10/model.safetensors");
  const auto ta = parse_safetensors(fa), tb = parse_safetensors(fb);
  ASSERT_EQ(ta.size(), tb.size());
  for (const auto& [name, e] : ta) {
    const auto* x = reinterpret_cast<const float*>(e.data);
    const auto* y = reinterpret_cast<const float*>(tb.at(name).data);
    for (size_t i = 0; i < e.nbytes / 4; ++i) ASSERT_NEAR(x[i], y[i], 1e-5 * std::max(1.f, std::fabs(x[i]))) << name;
  }

  // Rows that do not split evenly over the ranks: one line, the job ends.
  auto odd = sh(mpirun(2) + "train --data " + q(d / "ids.json") +
                " --dim 32 --layers 1 --heads 2 --hidden 48 --vocab 96 --ctx 64 -T 24 -b 3 --steps 1 -t 1");
  EXPECT_NE(odd.status, 0);
  EXPECT_NE(odd.out.find("do not split evenly over 2 ranks"), std::string::npos) << odd.out;
}
