#pragma once
// The harness of the tests that check camelid's training against PyTorch (Debian's python3-torch):
// is torch there, run camelid and a tests/*.py oracle on the same inputs, compare their JSON step
// logs and their f32 safetensors outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli_runner.h"
#include "core/mmap_file.h"
#include "model/lora.h"
#include "model/safetensors.h"
#include "model_files.h"

namespace camelid::test {

inline bool have_torch() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0;
  return ok;
}

// In a test body: skips it when /usr/bin/python3 has no torch, or fails it when CI=true.
#define CAMELID_REQUIRE_TORCH()                                                                         \
  do {                                                                                                  \
    if (!::camelid::test::have_torch()) {                                                               \
      const char* ci = std::getenv("CI");                                                               \
      if (ci && std::string(ci) == "true") FAIL() << "/usr/bin/python3 cannot import torch (apt install python3-torch)"; \
      GTEST_SKIP() << "/usr/bin/python3 cannot import torch";                                           \
    }                                                                                                   \
  } while (0)

// Runs tests/<script> with args; its stdout and stderr (expects exit status 0).
inline std::string run_oracle(const std::string& script, const std::string& args) {
  std::string out;
  FILE* p = popen(("/usr/bin/python3 '" CAMELID_SOURCE_DIR "/tests/" + script + "' " + args + " 2>&1").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << out;
  return out;
}

struct OracleRuns {
  std::vector<nlohmann::json> ours, theirs;  // the step logs
  std::string out;                           // camelid's output
};

// `camelid <ours> --no-shuffle -t 2 <common> --log-json d/log.jsonl -o d/out` and
// `tests/<script> <theirs> --out d/torch.safetensors <common>`: common holds the flags both take
// under the same names.
inline OracleRuns run_both(const TempDir& d, const std::string& ours, const std::string& script,
                           const std::string& theirs, const std::string& common) {
  OracleRuns o;
  auto r = run_camelid(ours + " --no-shuffle -t 2" + common + " --log-json " + q(d / "log.jsonl") + " -o " + q(d / "out"),
                       true);
  EXPECT_EQ(r.status, 0) << r.out;
  o.out = r.out;
  if (r.status != 0) return o;
  o.ours = json_lines(read_file(d / "log.jsonl"));
  o.theirs = json_lines(run_oracle(script, theirs + " --out " + q(d / "torch.safetensors") + common));
  return o;
}

// Fills every lora_B with seeded values in [-amp/2, amp/2): PEFT starts B at zero, which would
// leave A without a gradient at the first step (and the adapted model equal to the base).
inline void fill_lora_b(LoraAdapter& ad, uint32_t seed, float amp) {
  for (Param& p : ad.params.params)
    if (p.name.find("lora_B") != std::string::npos)
      for (float& v : p.value) seed = seed * 1664525u + 1013904223u, v = amp * (float(seed >> 8) * 0x1.0p-24f - 0.5f);
}

inline double rel_diff(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-12); }

// Both logs have n steps that agree on each key within its relative tolerance.
inline void expect_same_steps(const std::vector<nlohmann::json>& ours, const std::vector<nlohmann::json>& theirs,
                              size_t n, std::initializer_list<std::pair<const char*, double>> keys) {
  ASSERT_EQ(ours.size(), n);
  ASSERT_EQ(theirs.size(), n);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(ours[i]["step"], theirs[i]["step"]);
    for (auto [k, tol] : keys)
      EXPECT_LT(rel_diff(ours[i][k], theirs[i][k]), tol) << k << " at step " << i + 1 << ": " << ours[i] << " vs " << theirs[i];
  }
}

inline std::map<std::string, std::vector<float>> f32_tensors(const std::string& path) {
  MappedFile f(path);
  std::map<std::string, std::vector<float>> out;
  for (auto& [name, e] : parse_safetensors(f)) {
    EXPECT_EQ(e.dtype, "F32") << name;
    std::vector<float> v(e.nbytes / 4);
    std::memcpy(v.data(), e.data, e.nbytes);
    out[name] = std::move(v);
  }
  return out;
}

// The same tensors in both f32 safetensors files, each element within `tol`.
inline void expect_same_tensors(const std::string& ours, const std::string& theirs, float tol = 1e-4f) {
  const auto a = f32_tensors(ours), b = f32_tensors(theirs);
  ASSERT_EQ(a.size(), b.size());
  for (auto& [name, v] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    const auto& w = b.at(name);
    ASSERT_EQ(v.size(), w.size()) << name;
    float worst = 0;
    for (size_t i = 0; i < v.size(); ++i) worst = std::max(worst, std::abs(v[i] - w[i]));
    EXPECT_LT(worst, tol) << name;
  }
}

}  // namespace camelid::test
