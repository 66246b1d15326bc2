// AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c; chosen only if the CPU has them).
#include <immintrin.h>

#include "kernels/cpu/attend_simd.h"
#include "kernels/cpu/gemm_simd.h"
#include "kernels/cpu/matmul_packed_simd.h"
#include "kernels/cpu/matmul_simd.h"
#include "kernels/cpu/qmatmul.h"

namespace camelid::kernels {
namespace {

struct V256 {
  using vec = __m256;
  static constexpr int lanes = 8;
  using xvec = vec;  // X and W are widened to f32
  using xelem = float;
  static constexpr int kstep = lanes;
  // 12 accumulators + 3 x + 1 w of 16 registers. Against 2 x 5 (10 accumulators), a widened
  // f16/bf16 w feeds 3 FMAs instead of 2: Zen 3, BM_matmul T=128 f16 124-147 against 96-117
  // GFLOP/s, f32 T=16 87-116 against 59-80; bench-450m prefill bf16 +15%, f16 / f32 +5%.
  static constexpr int tile_t = 3, tile_o = 4;
  static constexpr int gemv_rows = 8;  // decode: rows in flight (4 streamed f16/bf16 ~10% slower)
  static vec zero() { return _mm256_setzero_ps(); }
  static vec set1(float a) { return _mm256_set1_ps(a); }
  static vec load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, vec v) { _mm256_storeu_ps(p, v); }
  static vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
  static vec mul(vec a, vec b) { return _mm256_mul_ps(a, b); }
  static vec add(vec a, vec b) { return _mm256_add_ps(a, b); }
  // Lanes added by halving: (a0 + a4) + (a2 + a6) + ((a1 + a5) + (a3 + a7)); the packed matmul
  // adds its partial tiles in this order too.
  static float sum(vec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // The sums of 8 vectors as one vector (lane j = sum of a[j]).
  static vec sums(const vec* a) { return simd::sums8(a); }
  static void transpose(vec r[8]) {  // r[i] lane j -> r[j] lane i
    vec t[8], s[8];
    for (int i = 0; i < 4; ++i) t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]), t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    for (int i = 0; i < 2; ++i) {  // s[4i + q], 128-bit lane l: column 4l + q of rows 4i .. 4i+3
      const __m256d a = _mm256_castps_pd(t[4 * i]), b = _mm256_castps_pd(t[4 * i + 1]);
      const __m256d c = _mm256_castps_pd(t[4 * i + 2]), d = _mm256_castps_pd(t[4 * i + 3]);
      s[4 * i] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c)), s[4 * i + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
      s[4 * i + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, d)), s[4 * i + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, d));
    }
    for (int q = 0; q < 4; ++q) r[q] = _mm256_permute2f128_ps(s[q], s[4 + q], 0x20), r[4 + q] = _mm256_permute2f128_ps(s[q], s[4 + q], 0x31);
  }
  template <DType DT>
  static vec load_w(const uint8_t* row, int k) {
    if constexpr (DT == DType::F32) {
      return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
    } else {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + size_t(k) * 2));
      if constexpr (DT == DType::F16) return _mm256_cvtph_ps(h);
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
  }
};

}  // namespace

const KernelTable& table_avx2() {
  // gemm: 6 x 16 outputs = 12 accumulators + 2 loads of B + 1 broadcast of 16 registers.
  static const KernelTable t{simd::matmul_rows<V256>, simd::attend_rows<V256>, nullptr, nullptr,
                             avx2::quantize_activations, avx2::qmatmul_rows,
#ifdef CAMELID_NO_AVXVNNI  // a sanitizer tree on a machine without it (CMakeLists.txt)
                             nullptr,
#else
                             avxvnni::qmatmul_rows,
#endif
                             simd::gemm_tile<V256, 6, 2>, 6, 16, simd::widen<V256>, simd::packed_x_floats<V256, 6, 2>,
                             simd::pack_x<V256, 6, 2>, simd::matmul_rows_packed<V256, 6, 2, void>,
                             avx2::qgemv_panel};
  return t;
}

}  // namespace camelid::kernels
