// Every kernel ISA the CPU runs against the portable reference (in double), for every weight
// dtype, odd shapes and unaligned weights; rows are bit-identical whatever the batch size
// (continuous batching relies on it); dtype conversions are exact.
#include <cpuid.h>
#include <gtest/gtest.h>
#include <immintrin.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "kernels/kernels.h"

using namespace camelid;
using kernels::Isa;

namespace {

struct Weights {
  std::vector<uint8_t> storage;
  Tensor t;
  std::vector<double> values;  // exact widened values
  Weights(int rows, int cols, DType dt, int misalign, std::mt19937& rng) {
    const size_t es = dtype_size(dt), n = size_t(rows) * cols;
    storage.resize(n * es + 64);
    uint8_t* base = storage.data() + misalign * es;  // only element-aligned, like a packed file
    std::normal_distribution<float> d(0.f, 1.f);
    values.resize(n);
    for (size_t i = 0; i < n; ++i) {
      float v = d(rng);
      if (dt == DType::F32) {
        std::memcpy(base + i * 4, &v, 4);
      } else {
        uint16_t h = dt == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
        std::memcpy(base + i * 2, &h, 2);
        v = dt == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
      }
      values[i] = v;
    }
    t = Tensor{base, dt, rows, cols};
  }
};

class Kernels : public testing::TestWithParam<std::tuple<Isa, DType>> {
 protected:
  // bf16 weights are widened to f32 here; the bf16-dot kernel has its own tests (Bf16Dot).
  void SetUp() override {
    if (!kernels::isa_supported(std::get<0>(GetParam()))) GTEST_SKIP() << "CPU lacks this ISA";
    saved_ = kernels::active_isa(), saved_dot_ = kernels::bf16_dot_active();
    kernels::set_isa(std::get<0>(GetParam()));
    kernels::set_bf16_dot(false);
  }
  void TearDown() override {
    kernels::set_isa(saved_);
    kernels::set_bf16_dot(saved_dot_);
  }
  Isa saved_ = Isa::Portable;
  bool saved_dot_ = false;
};

// Every output against a double-precision reference over odd shapes and batch sizes. With
// `bf16_x` the reference takes the activations rounded to bf16, as the bf16-dot kernel does.
void expect_matmul_matches_double(DType dt, bool bf16_x, std::mt19937& rng, const std::vector<std::pair<int, int>>& shapes) {
  for (auto [O, K] : shapes)
    for (int T : {1, 2, 3, 5, 8, 17, 64, 130}) {
      Weights w(O, K, dt, (O + K) % 3, rng);
      std::vector<float> x(size_t(T) * K), y(size_t(T) * O, -1.f);
      std::normal_distribution<float> d(0.f, 1.f);
      for (auto& v : x) v = d(rng);
      kernels::matmul(x.data(), T, w.t, y.data());
      for (int t = 0; t < T; ++t)
        for (int o = 0; o < O; ++o) {
          double ref = 0, mag = 0;
          for (int i = 0; i < K; ++i) {
            const float xi = x[size_t(t) * K + i];
            const double p = double(bf16_x ? bf16_to_f32(f32_to_bf16(xi)) : xi) * w.values[size_t(o) * K + i];
            ref += p, mag += std::fabs(p);
          }
          ASSERT_NEAR(y[size_t(t) * O + o], ref, 2e-6 * mag + 1e-30)
              << "O=" << O << " K=" << K << " T=" << T << " t=" << t << " o=" << o;
        }
    }
}

TEST_P(Kernels, MatmulMatchesDoublePrecision) {
  std::mt19937 rng(7);
  expect_matmul_matches_double(std::get<1>(GetParam()), false, rng,
                               {{1, 1}, {7, 5}, {13, 16}, {37, 33}, {64, 64}, {50, 100}, {97, 257}, {200, 1030}});
}

// Each row of a T-row matmul equals the row alone, and so do sub-batches starting at row 5.
void expect_rows_batch_invariant(DType dt, int O, int K, int T, unsigned seed, std::vector<int> subs) {
  std::mt19937 rng(seed);
  Weights w(O, K, dt, 1, rng);
  std::vector<float> x(size_t(T) * K), all(size_t(T) * O), one(O);
  std::normal_distribution<float> d(0.f, 1.f);
  for (auto& v : x) v = d(rng);
  kernels::matmul(x.data(), T, w.t, all.data());
  for (int t = 0; t < T; ++t) {
    kernels::matmul(&x[size_t(t) * K], 1, w.t, one.data());
    ASSERT_EQ(0, std::memcmp(one.data(), &all[size_t(t) * O], O * 4)) << "row " << t;
  }
  for (int sub : subs) {
    std::vector<float> part(size_t(sub) * O);
    kernels::matmul(&x[size_t(5) * K], sub, w.t, part.data());
    ASSERT_EQ(0, std::memcmp(part.data(), &all[size_t(5) * O], part.size() * 4)) << "batch of " << sub;
  }
}

TEST_P(Kernels, RowsAreBitIdenticalWhateverTheBatch) {
  expect_rows_batch_invariant(std::get<1>(GetParam()), 101, 203, 19, 3, {2, 3, 4, 7});
}

// Rows as long as the model's (K over 1024, with a tail) in a batch of many register tiles:
// every row must still match the row alone (guards any blocking of K in the batched path).
TEST_P(Kernels, LongRowsAreBitIdenticalWhateverTheBatch) {
  expect_rows_batch_invariant(std::get<1>(GetParam()), 29, 1300, 13, 17, {});
}

// Batches of 64 rows or more take the packed outer-product kernel for f32 weights; its rows
// must equal the dot-product kernel's row alone, with partial X tiles and W panels, a K tail
// and K shorter than a vector.
TEST_P(Kernels, PackedBatchesAreBitIdenticalToRowsAlone) {
  expect_rows_batch_invariant(std::get<1>(GetParam()), 77, 203, 70, 23, {64, 33});
  expect_rows_batch_invariant(std::get<1>(GetParam()), 130, 1536, 66, 29, {});
  expect_rows_batch_invariant(std::get<1>(GetParam()), 5, 7, 65, 31, {});
}

TEST_P(Kernels, ThreadCountDoesNotChangeResults) {
  const DType dt = std::get<1>(GetParam());
  std::mt19937 rng(5);
  const int O = 300, K = 96;
  Weights w(O, K, dt, 0, rng);
  for (int T : {9, 70}) {  // 70: the packed kernel for f32
    std::vector<float> x(size_t(T) * K, 0.25f), y1(size_t(T) * O), y2(size_t(T) * O);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(float(i));
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    kernels::matmul(x.data(), T, w.t, y1.data());
    omp_set_num_threads(2);
    kernels::matmul(x.data(), T, w.t, y2.data());
    omp_set_num_threads(saved);
    EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * 4)) << "T=" << T;
  }
}

TEST_P(Kernels, AttendMatchesDoublePrecision) {
  std::mt19937 rng(9);
  std::normal_distribution<float> d(0.f, 1.f);
  for (int hd : {1, 7, 16, 64, 100, 128, 256})
    for (int n : {1, 5, 33}) {
      const size_t ld = size_t(hd) + 3;  // rows of a wider cache line-up, as with several kv heads
      std::vector<float> q(hd), k(n * ld), v(n * ld), scores(n), out(hd, 99.f);
      for (auto* a : {&q, &k, &v})
        for (auto& x : *a) x = d(rng);
      const float scale = 1.f / std::sqrt(float(hd));
      kernels::attend(q.data(), k.data(), v.data(), ld, n, hd, scale, scores.data(), out.data());
      std::vector<double> p(n);
      double mx = -1e300, sum = 0;
      for (int j = 0; j < n; ++j) {
        double s = 0;
        for (int i = 0; i < hd; ++i) s += double(q[i]) * k[j * ld + i];
        mx = std::max(mx, p[j] = s * scale);
      }
      for (auto& x : p) sum += (x = std::exp(x - mx));
      for (int i = 0; i < hd; ++i) {
        double ref = 0, mag = 0;
        for (int j = 0; j < n; ++j) ref += p[j] / sum * v[j * ld + i], mag += std::fabs(p[j] / sum * v[j * ld + i]);
        EXPECT_NEAR(out[i], ref, 1e-5 * (mag + 1)) << "hd " << hd << " n " << n << " i " << i;
      }
    }
}

// A tile of rows (grouped heads x consecutive tokens, each with its own length) gives every row
// the bits attend() gives it alone: what keeps prefill, decode and any batch bit-identical.
TEST_P(Kernels, AttendRowsMatchAttendAloneBitForBit) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0.f, 1.f);
  for (int hd : {7, 16, 64, 100, 128})
    for (int nrows : {1, 3, 13}) {
      const int nmax = 300;  // several L1 blocks of positions
      const size_t ld = size_t(hd) + 5;
      std::vector<float> q(size_t(nrows) * hd), k(nmax * ld), v(nmax * ld), scores(size_t(nrows) * nmax);
      for (auto* a : {&q, &k, &v})
        for (auto& x : *a) x = d(rng);
      std::vector<float> out(size_t(nrows) * hd, 99.f), alone(hd), s1(nmax);
      std::vector<kernels::AttendRow> rows;
      for (int r = 0; r < nrows; ++r)
        rows.push_back({&q[size_t(r) * hd], &out[size_t(r) * hd], r == 0 ? nmax : 1 + int(rng() % nmax)});
      const float scale = 1.f / std::sqrt(float(hd));
      kernels::attend_rows(rows.data(), nrows, k.data(), v.data(), ld, hd, scale, scores.data());
      for (int r = 0; r < nrows; ++r) {
        kernels::attend(rows[r].q, k.data(), v.data(), ld, rows[r].n, hd, scale, s1.data(), alone.data());
        EXPECT_EQ(0, std::memcmp(alone.data(), rows[r].out, size_t(hd) * 4)) << "hd " << hd << " row " << r << " n " << rows[r].n;
      }
    }
}

// gemm (training's products): odd shapes around every register tile and the 256-step blocks,
// both layouts of A, overwrite and accumulate, in and outside a parallel region.
// Keys and values read in place from blocks of 16 positions scattered in memory (a paged KV
// cache) give the bits of the same values laid out contiguously.
TEST_P(Kernels, PagedAttentionEqualsContiguousBitForBit) {
  std::mt19937 rng(19);
  std::normal_distribution<float> d(0.f, 1.f);
  for (int hd : {16, 64, 100})
    for (int nrows : {1, 4, 9}) {
      const int nmax = 250, nblocks = (nmax + 15) / 16;
      const size_t ld = size_t(hd) + 3;
      std::vector<float> q(size_t(nrows) * hd), k(nmax * ld), v(nmax * ld), scores(size_t(nrows) * nmax);
      for (auto* a : {&q, &k, &v})
        for (auto& x : *a) x = d(rng);
      // The blocks in a pool, in reverse order with a gap, rows ld floats apart as in the cache.
      std::vector<float> kpool(size_t(nblocks + 1) * 16 * ld), vpool(kpool.size());
      std::vector<const float*> kb(nblocks), vb(nblocks);
      for (int b = 0; b < nblocks; ++b) {
        const size_t at = size_t(nblocks - b) * 16 * ld;
        for (int p = 0; p < 16 && 16 * b + p < nmax; ++p) {
          std::copy_n(&k[size_t(16 * b + p) * ld], ld, &kpool[at + size_t(p) * ld]);
          std::copy_n(&v[size_t(16 * b + p) * ld], ld, &vpool[at + size_t(p) * ld]);
        }
        kb[size_t(b)] = &kpool[at], vb[size_t(b)] = &vpool[at];
      }
      std::vector<float> out(size_t(nrows) * hd), paged(size_t(nrows) * hd);
      std::vector<kernels::AttendRow> rows, prows;
      for (int r = 0; r < nrows; ++r) {
        const int n = r == 0 ? nmax : 1 + int(rng() % nmax);
        rows.push_back({&q[size_t(r) * hd], &out[size_t(r) * hd], n});
        prows.push_back({&q[size_t(r) * hd], &paged[size_t(r) * hd], n});
      }
      const float scale = 1.f / std::sqrt(float(hd));
      kernels::attend_rows(rows.data(), nrows, k.data(), v.data(), ld, hd, scale, scores.data());
      const kernels::KVRows kr{kb.data(), 4, ld}, vr{vb.data(), 4, ld};
      kernels::attend_rows_paged(prows.data(), nrows, kr, vr, hd, scale, scores.data());
      EXPECT_EQ(0, std::memcmp(out.data(), paged.data(), out.size() * 4)) << "hd " << hd << " rows " << nrows;
    }
}

TEST_P(Kernels, GemmMatchesDoublePrecision) {
  if (std::get<1>(GetParam()) != DType::F32) GTEST_SKIP() << "gemm is f32 only";
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0.f, 1.f);
  for (auto [M, N, P] : std::vector<std::tuple<int, int, int>>{{1, 1, 1}, {5, 7, 3}, {13, 33, 17}, {25, 49, 300},
                                                               {37, 64, 513}, {100, 96, 64}, {640, 40, 70}})
    for (bool at : {false, true})
      for (bool acc : {false, true}) {
        std::vector<float> A(size_t(M) * P), B(size_t(P) * N), C(size_t(M) * (N + 3));
        for (auto& v : A) v = d(rng);
        for (auto& v : B) v = d(rng);
        for (auto& v : C) v = d(rng);
        const std::vector<float> C0 = C;
        const size_t ldc = size_t(N) + 3;  // rows of C apart by more than N: the gap is untouched
        kernels::gemm(M, N, P, A.data(), at ? 1 : size_t(P), at ? size_t(M) : 1, B.data(), size_t(N), C.data(), ldc, acc);
        for (int m = 0; m < M; ++m)
          for (int n = 0; n < int(ldc); ++n) {
            if (n >= N) {
              ASSERT_EQ(C[m * ldc + n], C0[m * ldc + n]);
              continue;
            }
            double ref = acc ? C0[m * ldc + n] : 0, mag = std::fabs(ref);
            for (int p = 0; p < P; ++p) {
              const double a = at ? A[size_t(p) * M + m] : A[size_t(m) * P + p];
              ref += a * B[size_t(p) * N + n], mag += std::fabs(a * B[size_t(p) * N + n]);
            }
            ASSERT_NEAR(C[m * ldc + n], ref, 2e-6 * mag + 1e-30) << M << "x" << N << "x" << P << " at=" << at << " acc=" << acc;
          }
      }
}

// Widening (the f16/bf16 KV cache's reads): every 16-bit pattern, at every offset of a vector and
// in the scalar tail, gives to_f32's bits (NaNs stay NaNs: the hardware may quiet a signalling one).
TEST_P(Kernels, WidenIsToF32ForEveryValue) {
  const DType dt = std::get<1>(GetParam());
  if (dt == DType::F32) GTEST_SKIP() << "nothing to widen";
  std::vector<uint16_t> h(65536 + 37);
  for (size_t i = 0; i < h.size(); ++i) h[i] = uint16_t(i * 40503u);  // an odd multiplier: all values
  std::vector<float> ref(h.size()), got(h.size() + 1);
  for (size_t off : {size_t(0), size_t(1), size_t(7)}) {
    const size_t n = h.size() - off;
    to_f32(dt, h.data() + off, ref.data(), n);
    std::fill(got.begin(), got.end(), -1.f);
    kernels::widen(dt, h.data() + off, got.data(), n);
    for (size_t i = 0; i < n; ++i) {
      if (std::isnan(ref[i])) {
        ASSERT_TRUE(std::isnan(got[i])) << std::hex << h[off + i];
        continue;
      }
      uint32_t a, b;
      std::memcpy(&a, &ref[i], 4), std::memcpy(&b, &got[i], 4);
      ASSERT_EQ(a, b) << "value 0x" << std::hex << h[off + i] << " at " << std::dec << i << " offset " << off;
    }
    ASSERT_EQ(got[n], -1.f);  // nothing written past n
  }
}

INSTANTIATE_TEST_SUITE_P(All, Kernels,
                         testing::Combine(testing::Values(Isa::Portable, Isa::AVX2, Isa::AVX512),
                                          testing::Values(DType::F32, DType::F16, DType::BF16)),
                         [](const testing::TestParamInfo<std::tuple<Isa, DType>>& i) {
                           return std::string(kernels::isa_name(std::get<0>(i.param))) + "_" + dtype_name(std::get<1>(i.param));
                         });

// bf16 dot (AVX512-BF16): activations are rounded to bf16 and bf16 x bf16 products are exact in
// f32, so the result is the f32-accumulated dot product of the rounded activations: it meets the
// bound of MatmulMatchesDoublePrecision against a reference computed from the rounded values.
class Bf16Dot : public testing::Test {
 protected:
  void SetUp() override {
    saved_ = kernels::active_isa(), saved_dot_ = kernels::bf16_dot_active();
    kernels::set_isa(kernels::best_isa());
    if (!kernels::set_bf16_dot(true)) GTEST_SKIP() << "CPU lacks AVX512-BF16";
  }
  void TearDown() override {
    kernels::set_isa(saved_);
    kernels::set_bf16_dot(saved_dot_);
  }
  Isa saved_ = Isa::Portable;
  bool saved_dot_ = false;
};

TEST_F(Bf16Dot, MatchesDoublePrecisionOfRoundedActivations) {
  std::mt19937 rng(11);
  expect_matmul_matches_double(DType::BF16, true, rng,
                               {{1, 1}, {7, 5}, {13, 32}, {37, 33}, {64, 64}, {50, 100}, {97, 257}, {200, 1030}});
}

TEST_F(Bf16Dot, RowsAreBitIdenticalWhateverTheBatchOrThreads) {
  std::mt19937 rng(13);
  // K % 32 != 0: the zero-padded tail too (odd: half a pair); T = 70: the packed kernel.
  for (const auto& [K, T] : {std::pair{203, 19}, {1100, 19}, {203, 70}, {1537, 66}}) {
    const int O = 101;
    Weights w(O, K, DType::BF16, 1, rng);
    std::vector<float> x(size_t(T) * K), all(size_t(T) * O), one(O), one_thread(size_t(T) * O);
    std::normal_distribution<float> d(0.f, 1.f);
    for (auto& v : x) v = d(rng);
    kernels::matmul(x.data(), T, w.t, all.data());
    for (int t = 0; t < T; ++t) {
      kernels::matmul(&x[size_t(t) * K], 1, w.t, one.data());
      ASSERT_EQ(0, std::memcmp(one.data(), &all[size_t(t) * O], O * 4)) << "row " << t;
    }
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    kernels::matmul(x.data(), T, w.t, one_thread.data());
    omp_set_num_threads(saved);
    EXPECT_EQ(0, std::memcmp(one_thread.data(), all.data(), all.size() * 4)) << "K=" << K << " T=" << T;
  }
}

TEST_F(Bf16Dot, LeavesOtherWeightsAndInstructionSetsAlone) {
  std::mt19937 rng(17);
  const int O = 40, K = 70, T = 5;
  std::vector<float> x(size_t(T) * K), on(size_t(T) * O), off(size_t(T) * O);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(float(i));
  for (DType dt : {DType::F32, DType::F16}) {  // only bf16 weights take the bf16 path
    Weights w(O, K, dt, 0, rng);
    kernels::matmul(x.data(), T, w.t, on.data());
    kernels::set_bf16_dot(false);
    kernels::matmul(x.data(), T, w.t, off.data());
    kernels::set_bf16_dot(true);
    EXPECT_EQ(0, std::memcmp(on.data(), off.data(), on.size() * 4)) << dtype_name(dt);
  }
  kernels::set_isa(Isa::AVX2);  // no bf16 dot there: bf16 weights are widened again
  EXPECT_FALSE(kernels::bf16_dot_active());
  kernels::set_isa(kernels::best_isa());
  EXPECT_TRUE(kernels::bf16_dot_active()) << "the request is kept across instruction set changes";
}

__attribute__((target("f16c"))) uint16_t hardware_f16(float f) {
  return uint16_t(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}

TEST(DType, HalfConversionsAreExactAndRoundToNearestEven) {
  unsigned a, b, c, d;  // CPUID leaf 1: clang has no __builtin_cpu_supports("f16c")
  const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    EXPECT_EQ(f32_to_f16(f), h == 0x8000 ? 0x8000 : h) << h;  // round trip
    EXPECT_EQ(f32_to_bf16(bf16_to_f32(uint16_t(h))), ((h & 0x7fff) > 0x7f80) ? (h | 0x40) : h) << h;
  }
  if (f16c) {  // against the hardware converter on random floats, including ties and subnormals
    std::mt19937 rng(1);
    for (int i = 0; i < 200000; ++i) {
      uint32_t u = rng();
      float f;
      std::memcpy(&f, &u, 4);
      if (std::isnan(f)) continue;
      const uint16_t hw = hardware_f16(f);
      ASSERT_EQ(f32_to_f16(f), hw) << f;
    }
  }
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256), 0x3f80) << "tie rounds to even";
  EXPECT_EQ(f32_to_bf16(1.0f + 3.0f / 256), 0x3f82);
}

TEST(Isa, NamesAndForcing) {
  EXPECT_EQ(kernels::isa_from_name("avx2"), Isa::AVX2);
  EXPECT_THROW(kernels::isa_from_name("sse9"), std::exception);
  EXPECT_TRUE(kernels::isa_supported(Isa::Portable));
  EXPECT_TRUE(kernels::isa_supported(kernels::best_isa()));
}

}  // namespace
