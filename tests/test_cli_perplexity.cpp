// `camelid perplexity` over texts longer than the context: llama-perplexity's windows.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "cli_runner.h"
#include "model/weights.h"
#include "model_files.h"
#include "runtime/session.h"

using namespace camelid;
using namespace camelid::test;
using json = nlohmann::json;

namespace {

std::vector<int> random_ids(size_t n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int> ids(n);
  for (int& id : ids) id = 3 + int(rng() % uint32_t(vocab - 3));
  ids[0] = 1;  // BOS
  return ids;
}

// Each window's score is the sum of the NLLs of positions n_ctx/2 .. n_ctx-2 of that window with
// BOS in front: with causal attention, that is perplexity() over the whole window minus
// perplexity() over its first n_ctx/2 + 1 tokens (both sums of per-position NLLs).
TEST(Perplexity, WindowsScoreTheSecondHalfOfEachWindow) {
  TempDir dir;
  write_random_model(dir.str(), small_spec());  // max_seq_len 64
  Llama model(std::shared_ptr<const ModelWeights>(load_model(dir.str())));
  const int n_ctx = 16, first = n_ctx / 2;
  const std::vector<int> ids = random_ids(3 * n_ctx + 5, 32, 7);  // 3 windows, 5 tokens dropped
  for (int batch : {256, 5}) {
    const PerplexityResult r = perplexity_windows(model, ids, n_ctx, 1, batch);
    EXPECT_EQ(r.chunks, 3);
    EXPECT_EQ(r.scored_from, first);
    EXPECT_EQ(r.tokens, 3 * (n_ctx - 1 - first));
    double nll = 0;
    for (int c = 0; c < 3; ++c) {
      std::vector<int> w(ids.begin() + c * n_ctx, ids.begin() + (c + 1) * n_ctx);
      w[0] = 1;
      const PerplexityResult all = perplexity(model, w);
      const PerplexityResult head = perplexity(model, std::vector<int>(w.begin(), w.begin() + first + 1));
      nll += all.mean_nll * all.tokens - head.mean_nll * head.tokens;
    }
    EXPECT_NEAR(r.mean_nll, nll / r.tokens, 1e-6 * std::abs(r.mean_nll)) << "batch " << batch;
  }
  // A text shorter than one window, or a window beyond the model, is an error.
  expect_error([&] { perplexity_windows(model, std::vector<int>(ids.begin(), ids.begin() + 10), n_ctx, 1); }, {"fewer than one window of 16"});
  expect_error([&] { perplexity_windows(model, ids, 128, 1); }, {"exceed the model's context 64"});
}

TEST(CliPerplexity, LongTextUsesWindowsAndSaysSo) {
  TempDir dir;
  write_random_model(dir.str(), small_spec());
  const std::vector<int> ids = random_ids(200, 32, 3);  // longer than the model's 64 positions
  std::string csv;
  for (int id : ids) csv += (csv.empty() ? "" : ",") + std::to_string(id);
  const std::string file = write_temp("ppl-ids.txt", csv);
  const std::string base = "perplexity -m " + q(dir.str()) + " --ids-file " + q(file);
  // No -c: the text does not fit, so windows of the model's whole context (64 < 512).
  auto r = run_camelid(base + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  json j = json::parse(r.out);
  EXPECT_EQ(j["mode"], "windows");
  EXPECT_EQ(j["ctx"], 64);
  EXPECT_EQ(j["stride"], 64);
  EXPECT_EQ(j["chunks"], 3);
  EXPECT_EQ(j["scored_from"], 32);
  EXPECT_EQ(j["tokens"], 3 * 31);
  EXPECT_EQ(j["dropped_tokens"], 200 - 192);
  // -c 32 and the text form.
  r = run_camelid(base + " -c 32");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("windows of 32 tokens, stride 32"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("6 chunks"), std::string::npos) << r.out;
  // A text that fits keeps the whole-sequence mode.
  const std::string short_file = write_temp("ppl-short.txt", "1,5,6,7,8,9,10");
  r = run_camelid("perplexity -m " + q(dir.str()) + " --ids-file " + q(short_file) + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  j = json::parse(r.out);
  EXPECT_EQ(j["mode"], "whole");
  EXPECT_EQ(j["tokens"], 6);
}

}  // namespace
