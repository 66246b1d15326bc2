// AVX-512 kernels (compiled with -mavx512f/bw/vl/dq/bf16 -mf16c -mfma; chosen only if the CPU has
// them; the bf16-dot entries only run where the CPU also has AVX512-BF16).
#include <immintrin.h>

#include "core/dtype.h"
#include "kernels/cpu/attend_simd.h"
#include "kernels/cpu/gemm_simd.h"
#include "kernels/cpu/matmul_packed_simd.h"
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
  static vec add(vec a, vec b) { return _mm512_add_ps(a, b); }
  // Lanes added by halving (lane j + lane j+8, then j + j+4, j + j+2, j + j+1), as GCC's
  // _mm512_reduce_add_ps does, spelled out because the packed matmul adds its partial tiles in
  // this order and must match whatever the compiler.
  static float sum(vec v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    const __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)));
  }
  static void transpose(vec r[16]) {  // r[i] lane j -> r[j] lane i
    vec t[16], s[16];
    for (int i = 0; i < 8; ++i) t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]), t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    for (int i = 0; i < 4; ++i) {  // s[4i + q], 128-bit lane l: column 4l + q of rows 4i .. 4i+3
      const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
      const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
      s[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c)), s[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
      s[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d)), s[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int q = 0; q < 4; ++q) {  // a 4 x 4 transposition of 128-bit lanes of s[q], s[4+q], s[8+q], s[12+q]
      const vec p0 = _mm512_shuffle_f32x4(s[q], s[4 + q], 0x44), p1 = _mm512_shuffle_f32x4(s[q], s[4 + q], 0xee);
      const vec q0 = _mm512_shuffle_f32x4(s[8 + q], s[12 + q], 0x44), q1 = _mm512_shuffle_f32x4(s[8 + q], s[12 + q], 0xee);
      r[q] = _mm512_shuffle_f32x4(p0, q0, 0x88), r[4 + q] = _mm512_shuffle_f32x4(p0, q0, 0xdd);
      r[8 + q] = _mm512_shuffle_f32x4(p1, q1, 0x88), r[12 + q] = _mm512_shuffle_f32x4(p1, q1, 0xdd);
    }
  }
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

// The packed kernel's tile for bf16 weights (matmul_packed_simd.h): a broadcast pair of bf16
// activations times 16 rows' pairs of weights, by vdpbf16ps as the bf16-dot kernel does lane by lane.
struct V512Pairs : V512 {
  static vec fma(vec a, vec b, vec c) { return _mm512_dpbf16_ps(c, (__m512bh)a, (__m512bh)b); }
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
  static float sum(vec v) { return V512::sum(v); }  // the packed kernel's order
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
                             avx512::quantize_activations, avx512::qmatmul_rows,
#ifdef CAMELID_NO_AVX512VNNI  // a sanitizer tree on a machine without it (CMakeLists.txt)
                             nullptr,
#else
                             avx512vnni::qmatmul_rows,
#endif
                             simd::gemm_tile<V512, 12, 2>, 12, 32, simd::widen<V512>, simd::packed_x_floats<V512, 12, 2>,
                             simd::pack_x<V512, 12, 2>, simd::matmul_rows_packed<V512, 12, 2, V512Pairs>,
                             nullptr};
  return t;
}

}  // namespace camelid::kernels
