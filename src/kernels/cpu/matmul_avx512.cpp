// AVX-512 kernels (compiled with -mavx512f/bw/vl/dq/bf16 -mf16c -mfma; chosen only if the CPU has
// them; the bf16-dot entries only run where the CPU also has AVX512-BF16).
#include <immintrin.h>

#include "core/dtype.h"
#include "kernels/cpu/attend_simd.h"
#include "kernels/cpu/gemm_simd.h"
#include "kernels/cpu/matmul_simd.h"
#include "kernels/cpu/qmatmul.h"

namespace camelid::kernels {
namespace {

struct V512 {
  using vec = __m512;
  static constexpr int lanes = 16;
  using xvec = vec;  // X and W are widened to f32
  using xelem = float;
  static constexpr int kstep = lanes;
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

// bf16 x bf16 products taken two at a time and accumulated in f32 (vdpbf16ps): 32 K elements per
// instruction where widening the weights gives 16, and no widening. Products of two bf16 are
// exact in f32, so the only precision given up is rounding the activations to bf16.
struct V512Bf16Dot {
  using vec = __m512;
  using xvec = __m512bh;
  using xelem = uint16_t;
  static constexpr int kstep = 32;
  static constexpr int tile_t = 4, tile_o = 6, gemv_rows = 8;  // as V512: same register budget
  static vec zero() { return _mm512_setzero_ps(); }
  static xvec load(const uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }
  template <DType DT>
  static xvec load_w(const uint8_t* row, int k) {
    static_assert(DT == DType::BF16);
    return (__m512bh)_mm512_loadu_si512(row + size_t(k) * 2);
  }
  static vec fma(xvec x, xvec w, vec acc) { return _mm512_dpbf16_ps(acc, x, w); }
  static float sum(vec v) { return _mm512_reduce_add_ps(v); }
};

void matmul_rows_bf16(const uint16_t* X, int T, const Tensor& W, float* Y, int o0, int o1) {
  simd::Tile<V512Bf16Dot, DType::BF16>::matmul_rows(X, T, W, Y, o0, o1);
}

// Row by row, so an element's rounding never depends on where the row sits in the batch
// (vcvtneps2bf16 flushes subnormals; the scalar tail does not).
void round_to_bf16(const float* x, int T, int K, uint16_t* y) {
  for (int t = 0; t < T; ++t) {
    const float* xr = x + size_t(t) * K;
    uint16_t* yr = y + size_t(t) * K;
    int i = 0;
    for (; i + 16 <= K; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(yr + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(xr + i)));
    for (; i < K; ++i) yr[i] = f32_to_bf16(xr[i]);
  }
}

}  // namespace

const KernelTable& table_avx512() {
  // gemm: 12 x 32 outputs = 24 accumulators + 2 loads of B + 1 broadcast of 32 registers.
  static const KernelTable t{simd::matmul_rows<V512>, simd::attend_rows<V512>, matmul_rows_bf16, round_to_bf16,
                             avx512::quantize_activations, avx512::qmatmul_rows, avx512vnni::qmatmul_rows,
                             simd::gemm_tile<V512, 12, 2>, 12, 32, simd::widen<V512>};
  return t;
}

}  // namespace camelid::kernels
