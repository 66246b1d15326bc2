// The forward pass gives the same logits however the work is batched: one prompt at once, token by
// token, or several sequences interleaved in one batch (what continuous batching relies on).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "model/llama.h"
#include "model/random_model.h"

using namespace camelid;

namespace {

std::shared_ptr<const ModelWeights> random_weights(int kv_heads, DType dt) {
  auto spec = random_model_preset("tiny");
  spec.config.n_kv_heads = kv_heads;
  spec.dtype = dt;
  const std::string dir = std::filesystem::temp_directory_path() /
                          ("camelid-batched-" + std::to_string(::getpid()) + "-" + std::to_string(kv_heads) +
                           dtype_name(dt));
  write_random_model(dir, spec);
  auto w = load_model(dir);
  std::filesystem::remove_all(dir);  // the maps keep the pages alive
  return w;
}

std::vector<float> one_sequence(Llama& m, const std::vector<int>& ids) {
  KVCache cache(m.config(), 1, int(ids.size()));
  Batch b;
  for (size_t i = 0; i < ids.size(); ++i) b.add(ids[i], int(i), 0, i + 1 == ids.size());
  std::vector<float> out;
  m.forward(b, cache, out);
  return out;
}

class Batched : public testing::TestWithParam<std::tuple<int, DType>> {};

TEST_P(Batched, InterleavedSequencesMatchRunningAlone) {
  auto [kv_heads, dt] = GetParam();
  Llama m(random_weights(kv_heads, dt));
  const int V = m.config().vocab_size;
  const std::vector<std::vector<int>> seqs = {{1, 5, 9, 13, 200}, {1, 7}, {1, 300, 301, 302, 303, 304, 305}};

  // Prefill all three prompts but the last token in one batch, then the last tokens together.
  KVCache cache(m.config(), 3, 16);
  Batch b;
  for (int s = 0; s < 3; ++s)
    for (size_t i = 0; i + 1 < seqs[s].size(); ++i) b.add(seqs[s][i], int(i), s, false);
  std::vector<float> out;
  m.forward(b, cache, out);
  EXPECT_TRUE(out.empty());
  b.clear();
  for (int s = 2; s >= 0; --s) b.add(seqs[s].back(), int(seqs[s].size()) - 1, s, true);
  m.forward(b, cache, out);
  ASSERT_EQ(out.size(), size_t(3) * V);

  for (int s = 0; s < 3; ++s) {
    auto alone = one_sequence(m, seqs[s]);
    const float* got = &out[size_t(2 - s) * V];
    double worst = 0;
    for (int v = 0; v < V; ++v) worst = std::max(worst, double(std::fabs(got[v] - alone[v])));
    EXPECT_LT(worst, 1e-4) << "sequence " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Batched,
                         testing::Combine(testing::Values(4, 2, 1),  // MHA, GQA, MQA
                                          testing::Values(DType::F32, DType::BF16, DType::F16)));

TEST(Forward, RejectsBadTokensAndPositions) {
  Llama m(random_weights(2, DType::F32));
  KVCache cache(m.config(), 1, 4);
  std::vector<float> out;
  Batch b;
  b.add(m.config().vocab_size, 0, 0, true);
  EXPECT_THROW(m.forward(b, cache, out), std::exception);
  b.clear();
  b.add(1, 4, 0, true);
  EXPECT_THROW(m.forward(b, cache, out), std::exception);
  b.clear();
  b.add(1, 0, 1, true);
  EXPECT_THROW(m.forward(b, cache, out), std::exception);
}

}  // namespace
