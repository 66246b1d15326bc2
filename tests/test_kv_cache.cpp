// The paged KV cache: views give exactly what a contiguous [pos][kv_dim] layout gives, logits do
// not depend on where a sequence's blocks lie, and the block pool (budget, sharing, publishing,
// eviction, copy on write) keeps every sequence's positions intact.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "model/llama.h"
#include "model/random_model.h"

using namespace camelid;

namespace {

constexpr int B = KVCache::kBlockSize;

// 2 layers, 2 kv heads of 32 (q8_0 needs heads that are multiples of 32).
ModelConfig q8_config() {
  RandomModelSpec s = random_model_preset("tiny");
  ModelConfig& c = s.config;
  c.n_heads = 2, c.n_kv_heads = 2, c.head_dim = 32, c.max_seq_len = 128;
  return c;
}

std::shared_ptr<const ModelWeights> q8_model() {
  static std::shared_ptr<const ModelWeights> w = [] {
    RandomModelSpec s = random_model_preset("tiny");
    s.config = q8_config();
    const std::string dir = std::filesystem::temp_directory_path() / ("camelid-kvcache-" + std::to_string(::getpid()));
    write_random_model(dir, s);
    auto m = load_model(dir);
    std::filesystem::remove_all(dir);  // the maps keep the pages alive
    return std::shared_ptr<const ModelWeights>(std::move(m));
  }();
  return w;
}

std::vector<float> random_row(std::mt19937& g, int n) {
  std::uniform_real_distribution<float> u(-2, 2);
  std::vector<float> r(static_cast<size_t>(n));
  for (float& x : r) x = u(g);
  return r;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

}  // namespace

// Rows stored in two interleaved sequences (their blocks alternate in the pool) read back through
// keys()/values() exactly as the contiguous layout gave them: each row converted to the cache
// type, then the head's part widened to f32. Ranges inside one block and across several.
TEST(KVCache, ViewsMatchAContiguousLayout) {
  const ModelConfig c = q8_config();
  const int kv = c.kv_dim(), hd = c.head_dim, N = 3 * B + 5;
  for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
    KVCache cache(c, 2, 128, t);
    const size_t rb = row_bytes(t, kv);
    // contiguous[seq][layer][kv]: the old layout, rows rb bytes apart.
    std::vector<uint8_t> contiguous[2][2][2];
    std::mt19937 g(7);
    for (int pos = 0; pos < N; ++pos)
      for (int seq = 0; seq < 2; ++seq) {
        cache.prepare(seq, pos);
        for (int l = 0; l < c.n_layers; ++l) {
          const auto k = random_row(g, kv), v = random_row(g, kv);
          cache.store(l, seq, pos, k.data(), v.data());
          for (int w = 0; w < 2; ++w) {
            auto& buf = contiguous[seq][l][w];
            buf.resize(size_t(pos + 1) * rb);
            dtype_info(t).from_f32(w == 0 ? k.data() : v.data(), &buf[size_t(pos) * rb], kv);
          }
        }
      }
    EXPECT_EQ(cache.bytes(), size_t(2 * KVCache::blocks_for(N)) * cache.block_bytes()) << "blocks on demand";
    std::vector<float> scratch, want(static_cast<size_t>(hd));
    for (int n : {1, B - 1, B, B + 1, 2 * B + 3, N})
      for (int seq = 0; seq < 2; ++seq)
        for (int l = 0; l < c.n_layers; ++l)
          for (int kvh = 0; kvh < c.n_kv_heads; ++kvh)
            for (int w = 0; w < 2; ++w) {
              size_t ld = 0;
              const float* got = w == 0 ? cache.keys(l, seq, kvh, n, scratch, ld) : cache.values(l, seq, kvh, n, scratch, ld);
              for (int p = 0; p < n; ++p) {
                to_f32(t, &contiguous[seq][l][w][size_t(p) * rb] + row_bytes(t, int64_t(kvh) * hd), want.data(), size_t(hd));
                ASSERT_TRUE(same_bits(got + size_t(p) * ld, want.data(), size_t(hd)))
                    << dtype_name(t) << " n " << n << " seq " << seq << " layer " << l << " head " << kvh << " pos " << p;
              }
            }
  }
}

// A sequence's logits at every position, across block boundaries, are bit-identical whether its
// blocks are contiguous in the pool (one prompt alone) or interleaved with another sequence's and
// fed token by token or in chunks that straddle blocks.
TEST(KVCache, LogitsDoNotDependOnWhereBlocksLie) {
  const int N = 2 * B + 9;
  std::vector<int> ids, other;
  for (int i = 0; i < N; ++i) ids.push_back(3 + (i * 37) % 500), other.push_back(5 + (i * 91) % 500);
  for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
    Llama m(q8_model());
    m.set_kv_type(t);
    const int V = m.config().vocab_size;
    std::vector<float> alone;
    {
      KVCache cache(m.config(), 1, N, t);
      Batch b;
      for (int i = 0; i < N; ++i) b.add(ids[size_t(i)], i, 0, true);
      m.forward(b, cache, alone);
    }
    KVCache cache(m.config(), 3, N, t);
    std::vector<float> out;
    for (int i = 0; i < N; ++i) {  // sequence 1 token by token, sequence 0's blocks in between
      Batch b;
      b.add(other[size_t(i)], i, 0, false);
      b.add(ids[size_t(i)], i, 1, true);
      m.forward(b, cache, out);
      ASSERT_TRUE(same_bits(out.data(), &alone[size_t(i) * V], size_t(V))) << dtype_name(t) << " pos " << i;
    }
    for (int i = 0; i < N; i += 7) {  // sequence 2 in chunks of 7
      Batch b;
      for (int j = i; j < std::min(N, i + 7); ++j) b.add(ids[size_t(j)], j, 2, true);
      m.forward(b, cache, out);
      ASSERT_TRUE(same_bits(out.data(), &alone[size_t(i) * V], out.size())) << dtype_name(t) << " chunk at " << i;
    }
  }
}

// Published blocks are found by their exact tokens and the blocks before them, mapped by another
// sequence without copying, kept after release until the pool needs room (oldest first), and a
// write into a shared block goes to a copy.
TEST(KVCache, PrefixBlocksArePublishedSharedAndEvicted) {
  const ModelConfig c = q8_config();
  KVCache cache(c, 3, 64, DType::F32, 5 * B);  // a pool of 5 blocks
  EXPECT_EQ(cache.max_blocks(), 5);
  EXPECT_EQ(cache.ctx(), 64);
  std::vector<int> toks(64);
  for (int i = 0; i < 64; ++i) toks[size_t(i)] = 100 + i;
  auto fill = [&](int seq, int from, int to, float value) {
    std::vector<float> r(size_t(c.kv_dim()), value);
    for (int p = from; p < to; ++p) {
      cache.prepare(seq, p);
      for (int l = 0; l < c.n_layers; ++l) cache.store(l, seq, p, r.data(), r.data());
    }
  };
  auto key0 = [&](int seq, int pos) {  // layer 0, head 0, first element at pos
    std::vector<float> s;
    size_t ld = 0;
    const float* k = cache.keys(0, seq, 0, pos + 1, s, ld);
    return k[size_t(pos) * ld];
  };
  fill(0, 0, 2 * B + 3, 1.f);  // 3 blocks, 2 full
  cache.publish(0, toks.data(), 2 * B + 3);
  EXPECT_EQ(cache.match_prefix(toks.data(), 64), 2);
  EXPECT_EQ(cache.match_prefix(toks.data(), 2 * B - 1), 1) << "only whole blocks inside the range";
  std::vector<int> other = toks;
  other[B + 2] = 7;
  EXPECT_EQ(cache.match_prefix(other.data(), 64), 1) << "the second block's tokens differ";
  other = toks;
  other[0] = 9;
  EXPECT_EQ(cache.match_prefix(other.data(), 64), 0) << "a block is keyed by everything before it too";

  EXPECT_EQ(cache.attach_prefix(1, toks.data(), 2), 2);
  EXPECT_EQ(cache.blocks_held(1), 2);
  EXPECT_EQ(cache.bytes(), 3 * cache.block_bytes()) << "shared, not copied";
  EXPECT_EQ(key0(1, B + 1), 1.f);
  // Sequence 1 rewinds into the second shared block: it writes into a copy.
  fill(1, B + 4, B + 5, 2.f);
  EXPECT_EQ(key0(1, B + 4), 2.f);
  EXPECT_EQ(key0(0, B + 4), 1.f) << "sequence 0's block is untouched";
  EXPECT_EQ(key0(1, B + 3), 1.f) << "the copy keeps the positions before";
  EXPECT_EQ(cache.match_prefix(toks.data(), 64), 2) << "the published block stays published";
  EXPECT_EQ(cache.blocks_available(), 1);

  // Released published blocks stay cached and are evicted least recently used first.
  cache.release(1);
  cache.release(0);
  EXPECT_EQ(cache.blocks_cached(), 2);
  EXPECT_EQ(cache.blocks_available(), 5);
  fill(2, 0, 4 * B, 3.f);  // needs 4 blocks: 3 free/new, then the cached tail block is evicted
  EXPECT_EQ(cache.blocks_cached(), 1);
  EXPECT_EQ(cache.match_prefix(toks.data(), 64), 1) << "the chain's head block outlived its tail";
  EXPECT_EQ(cache.attach_prefix(0, toks.data(), 1), 1);
  EXPECT_EQ(key0(0, 3), 1.f);
  try {
    fill(1, 0, B + 1, 4.f);  // 2 more blocks: only 0 left
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("KV cache is full"), std::string::npos) << e.what();
  }
  EXPECT_EQ(key0(2, 4 * B - 1), 3.f) << "a failed allocation leaves the others intact";

  // truncate keeps positions, drops the rest, and backs off a shared partial block.
  cache.release(1);
  EXPECT_EQ(cache.truncate(2, 2 * B + 1), 2 * B + 1);
  EXPECT_EQ(cache.blocks_held(2), 3);
  cache.publish(2, toks.data(), 2 * B + 1);
  EXPECT_EQ(cache.attach_prefix(1, toks.data(), 0), 0);
  cache.release(0);
  EXPECT_EQ(cache.match_prefix(toks.data(), 64), 2) << "sequence 2's blocks continue the chain";
  EXPECT_EQ(cache.attach_prefix(1, toks.data(), 2), 2);
  EXPECT_EQ(cache.truncate(1, B + 3), B) << "the partly kept block is shared: recomputed instead";
}

TEST(KVCache, BudgetAndContextChecks) {
  const ModelConfig c = q8_config();
  KVCache small(c, 4, 4096, DType::F16, 100);
  EXPECT_EQ(small.max_blocks(), 7) << "100 positions round up to 7 blocks";
  EXPECT_EQ(small.ctx(), 7 * B) << "the context is clamped to the budget";
  EXPECT_EQ(small.bytes(), 0u) << "nothing allocated before a position is stored";
  EXPECT_EQ(small.budget_bytes(), 7 * KVCache::bytes_per_token(c, DType::F16) * B);
  EXPECT_THROW(KVCache(c, 1, 16, DType::F16, -1), Error);
  try {
    KVCache(c, 1, 16, DType::F16, long(1) << 50);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--kv-budget"), std::string::npos) << e.what();
  }
}
