// AVX-512 kernels (compiled with -mavx512f/bw/vl/dq -mf16c -mfma; chosen only if the CPU has them).
#include <immintrin.h>

#include "kernels/cpu/matmul_simd.h"

namespace camelid::kernels {
namespace {

struct V512 {
  using vec = __m512;
  static constexpr int lanes = 16;
  static constexpr int tile_t = 4, tile_o = 6;  // 24 accumulators + 4 x + 1 w of 32 registers
  static constexpr int gemv_rows = 8;
  static vec zero() { return _mm512_setzero_ps(); }
  static vec set1(float a) { return _mm512_set1_ps(a); }
  static vec load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, vec v) { _mm512_storeu_ps(p, v); }
  static vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  static vec mul(vec a, vec b) { return _mm512_mul_ps(a, b); }
  static float sum(vec v) { return _mm512_reduce_add_ps(v); }
  // The sums of 16 vectors as one vector (lane j = sum of a[j]): fold each to 8 lanes, then
  // two 8-way transposing reductions.
  static vec sums(const vec* a) {
    __m256 y[16];
    for (int k = 0; k < 16; ++k) y[k] = _mm256_add_ps(_mm512_castps512_ps256(a[k]), _mm512_extractf32x8_ps(a[k], 1));
    return _mm512_insertf32x8(_mm512_castps256_ps512(simd::sums8(y)), simd::sums8(y + 8), 1);
  }
  template <DType DT>
  static vec load_w(const uint8_t* row, int k) {
    if constexpr (DT == DType::F32) {
      return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
    } else {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + size_t(k) * 2));
      if constexpr (DT == DType::F16) return _mm512_cvtph_ps(h);
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
  }
};

}  // namespace

const KernelTable& table_avx512() {
  static const KernelTable t{simd::matmul_rows<V512>, simd::attend<V512>};
  return t;
}

}  // namespace camelid::kernels
