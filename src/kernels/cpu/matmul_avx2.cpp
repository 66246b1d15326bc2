// AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c; chosen only if the CPU has them).
#include <immintrin.h>

#include "kernels/cpu/attend_simd.h"
#include "kernels/cpu/gemm_simd.h"
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
  static constexpr int tile_t = 2, tile_o = 5;  // 10 accumulators + 2 x + 1 w of 16 registers
  static constexpr int gemv_rows = 4;
  static vec zero() { return _mm256_setzero_ps(); }
  static vec set1(float a) { return _mm256_set1_ps(a); }
  static vec load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, vec v) { _mm256_storeu_ps(p, v); }
  static vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
  static vec mul(vec a, vec b) { return _mm256_mul_ps(a, b); }
  static float sum(vec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // The sums of 8 vectors as one vector (lane j = sum of a[j]).
  static vec sums(const vec* a) { return simd::sums8(a); }
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
                             avx2::quantize_activations, avx2::qmatmul_rows, avxvnni::qmatmul_rows,
                             simd::gemm_tile<V256, 6, 2>, 6, 16, simd::widen<V256>};
  return t;
}

}  // namespace camelid::kernels
