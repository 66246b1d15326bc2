// The quantized matmul (integer dot products): every weight type on every instruction set the CPU
// runs, with and without VNNI, against a double-precision reference built from the dequantized
// weights and the dequantized (quantized) activations; bit-identical to the portable kernel,
// whatever the batch, thread count or K; activation rounding identical with SIMD and scalar.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/quants.h"
#include "core/quants_blocks.h"
#include "kernels/cpu/qmatmul.h"
#include "kernels/kernels.h"
#include "quant_weights.h"

using namespace camelid;
using namespace camelid::testing_data;
using kernels::Isa;

namespace {

uint16_t u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
double h(const uint8_t* p) { return f16_to_f32(u16(p)); }

// One weight block as doubles, following ggml's dequantize_row_* (written apart from the
// kernels' own layouts, to check them). `lo`/`hi` receive the two parts of k-quants with mins
// (value = lo - hi), so error bounds can use |lo| + |hi|; elsewhere hi = 0.
void dequant_block(DType t, const uint8_t* b, double* lo, double* hi) {
  using namespace quants;
  for (int i = 0; i < dtype_info(t).block; ++i) hi[i] = 0;
  switch (t) {
    case DType::Q4_0:
      for (int j = 0; j < 16; ++j) lo[j] = h(b) * ((b[2 + j] & 15) - 8), lo[j + 16] = h(b) * ((b[2 + j] >> 4) - 8);
      break;
    case DType::Q4_1:
      for (int j = 0; j < 16; ++j) lo[j] = h(b) * (b[4 + j] & 15) + h(b + 2), lo[j + 16] = h(b) * (b[4 + j] >> 4) + h(b + 2);
      break;
    case DType::Q5_0:
    case DType::Q5_1: {
      const bool one = t == DType::Q5_1;
      uint32_t qh;
      std::memcpy(&qh, b + (one ? 4 : 2), 4);
      const uint8_t* qs = b + (one ? 8 : 6);
      for (int j = 0; j < 16; ++j) {
        const int x0 = (qs[j] & 15) | ((qh >> j) & 1) << 4, x1 = (qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
        lo[j] = one ? h(b) * x0 + h(b + 2) : h(b) * (x0 - 16);
        lo[j + 16] = one ? h(b) * x1 + h(b + 2) : h(b) * (x1 - 16);
      }
      break;
    }
    case DType::Q8_0:
      for (int j = 0; j < 32; ++j) lo[j] = h(b) * int8_t(b[2 + j]);
      break;
    case DType::IQ4_NL:
      for (int j = 0; j < 16; ++j) lo[j] = h(b) * kValuesIQ4NL[b[2 + j] & 15], lo[j + 16] = h(b) * kValuesIQ4NL[b[2 + j] >> 4];
      break;
    case DType::Q2_K: {
      const uint8_t* q = b + 16;
      int is = 0, y = 0;
      for (int n = 0; n < 256; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2)
          for (int half = 0; half < 2; ++half, ++is)
            for (int l = 0; l < 16; ++l, ++y)
              lo[y] = h(b + 80) * (b[is] & 15) * ((q[l + 16 * half] >> shift) & 3), hi[y] = h(b + 82) * (b[is] >> 4);
      break;
    }
    case DType::Q3_K: {
      int sc[16];
      for (int j = 0; j < 16; ++j)
        sc[j] = ((j < 8 ? b[96 + j] & 15 : b[96 + j - 8] >> 4) | ((b[104 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
      const uint8_t* q = b + 32;
      int is = 0, y = 0, m = 1;
      for (int n = 0; n < 256; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2, m <<= 1)
          for (int half = 0; half < 2; ++half, ++is)
            for (int l = 0; l < 16; ++l, ++y)
              lo[y] = h(b + 108) * sc[is] * (((q[l + 16 * half] >> shift) & 3) - ((b[l + 16 * half] & m) ? 0 : 4));
      break;
    }
    case DType::Q4_K:
    case DType::Q5_K: {
      const bool five = t == DType::Q5_K;
      const uint8_t *s = b + 4, *ql = b + (five ? 48 : 16), *qh = b + 16;
      auto scale_min = [&](int j, int& d, int& m) {
        if (j < 4) d = s[j] & 63, m = s[j + 4] & 63;
        else d = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4), m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
      };
      int y = 0;
      for (int j = 0; j < 8; j += 2, ql += 32)
        for (int half = 0; half < 2; ++half) {
          int d, m;
          scale_min(j + half, d, m);
          for (int l = 0; l < 32; ++l, ++y) {
            int q = half ? ql[l] >> 4 : ql[l] & 15;
            if (five && (qh[l] >> (j + half) & 1)) q += 16;
            lo[y] = h(b) * d * q, hi[y] = h(b + 2) * m;
          }
        }
      break;
    }
    case DType::Q6_K: {
      const uint8_t *ql = b, *qh = b + 128;
      const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
      double* y = lo;
      for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
        for (int l = 0; l < 32; ++l) {
          const int is = l / 16;
          y[l] = h(b + 208) * sc[is] * (((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32);
          y[l + 32] = h(b + 208) * sc[is + 2] * (((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32);
          y[l + 64] = h(b + 208) * sc[is + 4] * (((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
          y[l + 96] = h(b + 208) * sc[is + 6] * (((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
        }
      break;
    }
    case DType::IQ4_XS:
      for (int ib = 0; ib < 8; ++ib) {
        const int ls = ((b[4 + ib / 2] >> 4 * (ib % 2)) & 15) | ((u16(b + 2) >> 2 * ib) & 3) << 4;
        for (int j = 0; j < 16; ++j) {
          lo[32 * ib + j] = h(b) * (ls - 32) * kValuesIQ4NL[b[8 + 16 * ib + j] & 15];
          lo[32 * ib + j + 16] = h(b) * (ls - 32) * kValuesIQ4NL[b[8 + 16 * ib + j] >> 4];
        }
      }
      break;
    default: FAIL() << "no reference for " << dtype_name(t);
  }
}

// Activations as the kernels see them: the quantized rows, dequantized.
std::vector<double> dequant_activations(DType type, const std::vector<uint8_t>& q, int T, int K) {
  std::vector<double> x(size_t(T) * K);
  const int qb = type == DType::Q8_K ? 256 : 32, bb = type == DType::Q8_0 ? 34 : type == DType::Q8_1 ? 36 : 292;
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < K / qb; ++b) {
      const uint8_t* blk = q.data() + (size_t(t) * (K / qb) + b) * bb;
      float d;
      if (type == DType::Q8_K) std::memcpy(&d, blk, 4);
      else d = f16_to_f32(u16(blk));
      const int8_t* qs = reinterpret_cast<const int8_t*>(blk + (type == DType::Q8_0 ? 2 : 4));
      for (int j = 0; j < qb; ++j) x[size_t(t) * K + b * qb + j] = double(d) * qs[j];
    }
  return x;
}

class QMatmul : public QKernelTest {
 protected:
  std::vector<int> widths() const {  // K values: tails of 32-blocks and of super-blocks
    if (dtype_info(type()).block == 32) return {32, 96, 256, 512, 4352};
    return {256, 512, 4352};
  }
};

std::vector<float> run(const float* x, int T, const Tensor& w) {
  std::vector<float> y(size_t(T) * w.rows, -7.f);
  kernels::matmul_quantized(x, T, w, y.data());
  return y;
}

TEST_P(QMatmul, MatchesDoublePrecisionOfQuantizedActivations) {
  const DType dt = type(), xt = dtype_info(dt).vec_dot_type;
  const int qb = dtype_info(dt).block;
  std::mt19937 rng(1 + int(dt));
  for (int K : widths())
    for (auto [O, T] : {std::pair{1, 1}, {37, 3}, {100, 17}}) {
      QWeights w(dt, O, K, (O + K) % 5, rng);
      const std::vector<float> x = random_x(T, K, rng);
      std::vector<uint8_t> xq(row_bytes(xt, K) * T);
      kernels::quantize_activations(xt, x.data(), T, K, xq.data());
      const std::vector<double> xd = dequant_activations(xt, xq, T, K);
      const std::vector<float> y = run(x.data(), T, w.t);
      std::vector<double> lo(size_t(O) * K), hi(size_t(O) * K);
      for (int o = 0; o < O; ++o)
        for (int b = 0; b < K / qb; ++b)
          dequant_block(dt, w.t.row(o) + size_t(b) * dtype_info(dt).block_bytes, &lo[size_t(o) * K + b * qb], &hi[size_t(o) * K + b * qb]);
      // Float steps: per block a product of scales, a conversion and an fma, K / block steps.
      const double eps = (K / qb + 4) * std::ldexp(1.0, -24);
      for (int t = 0; t < T; ++t)
        for (int o = 0; o < O; ++o) {
          double ref = 0, mag = 0;
          for (int k = 0; k < K; ++k) {
            const double xv = xd[size_t(t) * K + k], a = lo[size_t(o) * K + k], c = hi[size_t(o) * K + k];
            ref += (a - c) * xv, mag += (std::fabs(a) + std::fabs(c)) * std::fabs(xv);
          }
          ASSERT_NEAR(y[size_t(t) * O + o], ref, eps * mag + 1e-30) << "K=" << K << " T=" << T << " t=" << t << " o=" << o;
        }
    }
}

TEST_P(QMatmul, EqualsThePortableKernelBitForBit) {
  const DType dt = type();
  std::mt19937 rng(2);
  for (int K : widths())
    for (int T : {1, 6}) {  // decode (its own kernel) and batches
      const int O = 61;
      QWeights w(dt, O, K, 3, rng);
      const std::vector<float> x = random_x(T, K, rng);
      const std::vector<float> y = run(x.data(), T, w.t);
      const Isa isa = kernels::active_isa();
      kernels::set_isa(Isa::Portable);
      const std::vector<float> ref = run(x.data(), T, w.t);
      kernels::set_isa(isa);
      for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], ref[i]) << "K=" << K << " T=" << T << " at " << i;
    }
}

TEST_P(QMatmul, RowsAreBitIdenticalWhateverTheBatchOrThreads) {
  const DType dt = type();
  std::mt19937 rng(3);
  const int O = 150, K = dtype_info(dt).block == 32 ? 384 : 512, T = 64;
  QWeights w(dt, O, K, 1, rng);
  const std::vector<float> x = random_x(T, K, rng);
  const std::vector<float> all = run(x.data(), T, w.t);
  for (int sub : {1, 3, 17})
    for (int t0 = 0; t0 + sub <= T; t0 += 23) {
      const std::vector<float> part = run(&x[size_t(t0) * K], sub, w.t);
      ASSERT_EQ(0, std::memcmp(part.data(), &all[size_t(t0) * O], part.size() * 4)) << "batch of " << sub << " at " << t0;
    }
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    const std::vector<float> y = run(x.data(), T, w.t);
    omp_set_num_threads(saved);
    EXPECT_EQ(0, std::memcmp(y.data(), all.data(), y.size() * 4)) << threads << " threads";
  }
}

const auto kTypes = testing::Values(DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K, DType::Q5_K, DType::Q4_1, DType::Q5_0,
                                    DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::IQ4_NL, DType::IQ4_XS);
INSTANTIATE_TEST_SUITE_P(Portable, QMatmul, testing::Combine(testing::Values(Isa::Portable), testing::Values(false), kTypes), qparam_name);
INSTANTIATE_TEST_SUITE_P(Simd, QMatmul,
                         testing::Combine(testing::Values(Isa::AVX2, Isa::AVX512), testing::Values(false, true), kTypes), qparam_name);

// Activation rounding: every ISA writes the scalar version's bytes, including halfway cases,
// zero blocks, a block whose largest magnitude appears with both signs, and tiny values.
TEST(QActivations, SimdBytesEqualScalar) {
  std::mt19937 rng(4);
  const int T = 3, K = 1024;
  std::vector<float> x = random_x(T, K, rng);
  for (int i = 0; i < 32; ++i) x[i] = float(i - 16) * 0.5f * (127.f / 8.f);  // multiples of half steps: ties
  for (int i = 32; i < 64; ++i) x[i] = 0.f;
  for (int i = 256; i < 512; ++i) x[i] = 0.f;                                 // a zero super-block
  x[600] = 3.f, x[601] = -3.f, x[700] = -5.f, x[710] = 5.f;                   // equal magnitudes, first wins
  for (int i = 800; i < 832; ++i) x[i] = 1e-30f * float(i - 816);
  for (int i = 900; i < 1024; ++i) x[i] = float(int(x[i] * 8)) / 8;           // many exact products
  const Isa saved = kernels::active_isa();
  for (DType type : {DType::Q8_0, DType::Q8_1, DType::Q8_K}) {
    std::vector<uint8_t> ref(row_bytes(type, K) * T), got(ref.size());
    kernels::quantize_activations_scalar(type, x.data(), T, K, ref.data());
    for (Isa isa : {Isa::Portable, Isa::AVX2, Isa::AVX512}) {
      if (!kernels::isa_supported(isa)) continue;
      kernels::set_isa(isa);
      std::fill(got.begin(), got.end(), 0xAA);
      kernels::quantize_activations(type, x.data(), T, K, got.data());
      for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_EQ(int(ref[i]), int(got[i])) << dtype_name(type) << " " << kernels::isa_name(isa) << " byte " << i;
    }
  }
  kernels::set_isa(saved);
}

// The scalar rounding follows ggml's reference quantizers: check a few values by hand.
TEST(QActivations, ScalarFollowsGgmlReference) {
  std::vector<float> x(256, 0.f);
  x[0] = 2.54f, x[1] = -1.27f, x[2] = 0.01f, x[3] = 0.005f;  // amax 2.54: d = 0.02, id = 50
  std::vector<uint8_t> q(292);
  kernels::quantize_row_q8_0(x.data(), q.data(), 32);
  EXPECT_EQ(f32_to_f16(2.54f / 127), u16(q.data()));
  EXPECT_EQ(127, int8_t(q[2]));
  EXPECT_EQ(-64, int8_t(q[3]));  // -63.5 rounds away from zero
  EXPECT_EQ(1, int8_t(q[4]));    // 0.5 rounds away from zero
  kernels::quantize_row_q8_K(x.data(), q.data(), 256);
  float d;
  std::memcpy(&d, q.data(), 4);
  EXPECT_EQ(1 / (-127.f / 2.54f), d);
  EXPECT_EQ(-127, int8_t(q[4]));  // scaled by -127 / max: the largest value maps to -127
  int16_t bsum0;
  std::memcpy(&bsum0, q.data() + 260, 2);
  int sum = 0;
  for (int j = 0; j < 16; ++j) sum += int8_t(q[4 + j]);
  EXPECT_EQ(sum, bsum0);
}

// The same rounding as the row quantizers of core/quants.h (written apart from these, from
// ggml's reference code), byte for byte.
TEST(QActivations, EqualCoreQuantizers) {
  std::mt19937 rng(5);
  const int K = 2048;
  std::vector<float> x = random_x(1, K, rng);
  for (int i = 0; i < 32; ++i) x[i] = float(i - 16) * 0.5f * (127.f / 8.f);
  for (int i = 256; i < 512; ++i) x[i] = 0.f;
  const std::pair<DType, void (*)(const float*, void*, int64_t)> types[] = {
      {DType::Q8_0, quants::quantize_q8_0}, {DType::Q8_1, quants::quantize_q8_1}, {DType::Q8_K, quants::quantize_q8_k}};
  for (auto [type, core] : types) {
    std::vector<uint8_t> ref(row_bytes(type, K)), got(ref.size());
    core(x.data(), ref.data(), K);
    kernels::quantize_activations(type, x.data(), 1, K, got.data());
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(int(ref[i]), int(got[i])) << dtype_name(type) << " byte " << i;
  }
}

// The test's dequantizer agrees with core's (ggml's dequantize_row_*), so the reference above
// checks the kernels against ggml's reading of every layout.
TEST(QMatmulReference, DequantizerAgreesWithCore) {
  std::mt19937 rng(6);
  for (DType dt : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::IQ4_NL, DType::Q2_K, DType::Q3_K,
                   DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_XS}) {
    const int K = 512, qb = dtype_info(dt).block;
    QWeights w(dt, 1, K, 0, rng);
    std::vector<float> core(K);
    to_f32(dt, w.t.data, core.data(), K);
    std::vector<double> lo(K), hi(K);
    for (int b = 0; b < K / qb; ++b) dequant_block(dt, w.t.row(0) + size_t(b) * dtype_info(dt).block_bytes, &lo[b * qb], &hi[b * qb]);
    for (int k = 0; k < K; ++k)  // core rounds d * scale to float first
      ASSERT_NEAR(core[k], lo[k] - hi[k], 1e-6 * (std::fabs(lo[k]) + std::fabs(hi[k]))) << dtype_name(dt) << " at " << k;
  }
}

// Several outputs of one X in one call (mixed weight types, as in Q4_K_M files) equal one call each.
TEST(QMatmulApi, SeveralOutputsEqualSeparateCalls) {
  std::mt19937 rng(8);
  const int K = 512, T = 5;
  QWeights a(DType::Q4_K, 70, K, 0, rng), b(DType::Q6_K, 33, K, 1, rng), c(DType::Q8_0, 50, K, 2, rng), d(DType::Q4_K, 20, K, 0, rng);
  const std::vector<float> x = random_x(T, K, rng);
  for (int t : {1, T}) {
    std::vector<float> ya(size_t(t) * 70), yb(size_t(t) * 33), yc(size_t(t) * 50), yd(size_t(t) * 20);
    kernels::matmul_quantized(x.data(), t, {{a.t, ya.data()}, {b.t, yb.data()}, {c.t, yc.data()}, {d.t, yd.data()}});
    EXPECT_EQ(ya, run(x.data(), t, a.t));
    EXPECT_EQ(yb, run(x.data(), t, b.t));
    EXPECT_EQ(yc, run(x.data(), t, c.t));
    EXPECT_EQ(yd, run(x.data(), t, d.t));
  }
  QWeights wide(DType::Q8_0, 4, 2 * K, 0, rng);
  std::vector<float> y1(T * 70), y2(T * 4);
  EXPECT_THROW(kernels::matmul_quantized(x.data(), T, {{a.t, y1.data()}, {wide.t, y2.data()}}), Error);
}

TEST(QMatmulApi, RejectsTypesWithoutIntegerKernels) {
  EXPECT_FALSE(kernels::matmul_quantized_supported(DType::F32));
  EXPECT_TRUE(kernels::matmul_quantized_supported(DType::Q4_K));
  float x = 1, y = 0;
  Tensor w{&x, DType::F32, 1, 1};
  EXPECT_THROW(kernels::matmul_quantized(&x, 1, w, &y), Error);
  EXPECT_THROW(kernels::quantize_activations(DType::Q4_0, &x, 1, 32, &y), Error);
}

}  // namespace
