#pragma once
// Activation rounding to Q8_0 / Q8_1 / Q8_K with SIMD, byte for byte as the scalar versions in
// qactivations.cpp (ggml's _ref quantizers): same float operations in the same order, roundf's
// half-away-from-zero built from truncation, Q8_K's round-half-even from the CPU's default
// rounding. `F` is a float vector type's traits (lanes, load, abs, max, ...). TU-local.
#include <cstring>
#include <immintrin.h>

#include "core/dtype.h"

namespace camelid::kernels::qsimd {
namespace {

template <class F>
void quantize_row_q8_0_simd(const float* x, uint8_t* y, int K, bool q8_1) {
  constexpr int NV = 32 / F::lanes;
  const int bytes = q8_1 ? 36 : 34, off = q8_1 ? 4 : 2;
  for (int b = 0; b < K / 32; ++b, x += 32, y += bytes) {
    typename F::vec v[NV];
    typename F::vec m = F::zero();
    for (int i = 0; i < NV; ++i) v[i] = F::load(x + i * F::lanes), m = F::max(m, F::abs(v[i]));
    const float amax = F::reduce_max(m);
    const float d = amax / 127, id = d != 0.f ? 1.f / d : 0.f;
    typename F::ivec q[NV];
    for (int i = 0; i < NV; ++i) q[i] = F::to_int(F::round_away(F::mul(v[i], F::set1(id))));
    F::store_bytes32(y + off, q);
    const uint16_t hd = f32_to_f16(d);
    std::memcpy(y, &hd, 2);
    if (q8_1) {
      const uint16_t hs = f32_to_f16(float(F::reduce_add(q, NV)) * d);
      std::memcpy(y + 2, &hs, 2);
    }
  }
}

template <class F>
void quantize_row_q8_K_simd(const float* x, uint8_t* y, int K) {
  constexpr int NV = 256 / F::lanes;
  for (int b = 0; b < K / 256; ++b, x += 256, y += 292) {
    typename F::vec m = F::zero();
    for (int i = 0; i < NV; ++i) m = F::max(m, F::abs(F::load(x + i * F::lanes)));
    const float amax = F::reduce_max(m);
    int16_t bsums[16] = {};
    float d = 0.f;
    if (amax == 0.f) {
      std::memset(y + 4, 0, 256);
    } else {
      int first = 0;  // the first element of largest magnitude keeps its sign
      for (int i = 0; i < NV; ++i) {
        const int lane = F::first_equal(F::abs(F::load(x + i * F::lanes)), amax);
        if (lane >= 0) {
          first = i * F::lanes + lane;
          break;
        }
      }
      const float iscale = -127.f / x[first];
      for (int i = 0; i < NV; i += 32 / F::lanes) {
        typename F::ivec q[32 / F::lanes];
        for (int j = 0; j < 32 / F::lanes; ++j)
          q[j] = F::min127(F::to_int(F::mul(F::load(x + (i + j) * F::lanes), F::set1(iscale))));
        F::store_bytes32(y + 4 + i * F::lanes, q);
        for (int j = 0; j < 32 / F::lanes; j += 16 / F::lanes)
          bsums[(i + j) * F::lanes / 16] = int16_t(F::reduce_add(q + j, 16 / F::lanes));
      }
      d = 1 / iscale;
    }
    std::memcpy(y, &d, 4);
    std::memcpy(y + 260, bsums, 32);
  }
}

template <class F>
void quantize_activations_simd(DType type, const float* X, int T, int K, void* out) {
  const size_t rb = row_bytes(type, K);
  for (int t = 0; t < T; ++t) {
    const float* x = X + size_t(t) * K;
    uint8_t* y = static_cast<uint8_t*>(out) + size_t(t) * rb;
    if (type == DType::Q8_K) quantize_row_q8_K_simd<F>(x, y, K);
    else quantize_row_q8_0_simd<F>(x, y, K, type == DType::Q8_1);
  }
}

// Round half away from zero (roundf): truncate, then step away from zero if the part cut off
// was at least one half (exact: the difference of a float and its truncation is exact).
struct F256 {
  using vec = __m256;
  using ivec = __m256i;
  static constexpr int lanes = 8;
  static vec zero() { return _mm256_setzero_ps(); }
  static vec load(const float* p) { return _mm256_loadu_ps(p); }
  static vec set1(float v) { return _mm256_set1_ps(v); }
  static vec mul(vec a, vec b) { return _mm256_mul_ps(a, b); }
  static vec abs(vec v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), v); }
  static vec max(vec a, vec b) { return _mm256_max_ps(a, b); }
  static float reduce_max(vec v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
  }
  static vec round_away(vec v) {
    const vec t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const vec far = _mm256_cmp_ps(abs(_mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const vec step = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.f)), _mm256_set1_ps(1.f));
    return _mm256_add_ps(t, _mm256_and_ps(far, step));
  }
  static ivec to_int(vec v) { return _mm256_cvtps_epi32(v); }
  static ivec min127(ivec v) { return _mm256_min_epi32(v, _mm256_set1_epi32(127)); }
  static int first_equal(vec v, float x) {
    const int m = _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_set1_ps(x), _CMP_EQ_OQ));
    return m ? __builtin_ctz(m) : -1;
  }
  static int reduce_add(const ivec* q, int n) {
    ivec s = q[0];
    for (int i = 1; i < n; ++i) s = _mm256_add_epi32(s, q[i]);
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1)));
  }
  // 4 x 8 int32 in int8 range -> 32 bytes in order (packs work per 128-bit lane, hence the permute).
  static void store_bytes32(uint8_t* p, const ivec* q) {
    const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
};

#ifdef __AVX512F__
struct F512 {
  using vec = __m512;
  using ivec = __m512i;
  static constexpr int lanes = 16;
  static vec zero() { return _mm512_setzero_ps(); }
  static vec load(const float* p) { return _mm512_loadu_ps(p); }
  static vec set1(float v) { return _mm512_set1_ps(v); }
  static vec mul(vec a, vec b) { return _mm512_mul_ps(a, b); }
  static vec abs(vec v) { return _mm512_abs_ps(v); }
  static vec max(vec a, vec b) { return _mm512_max_ps(a, b); }
  static float reduce_max(vec v) { return _mm512_reduce_max_ps(v); }
  static vec round_away(vec v) {
    const vec t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 far = _mm512_cmp_ps_mask(abs(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const vec step = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(int(0x80000000))),
                                                         _mm512_castps_si512(_mm512_set1_ps(1.f))));
    return _mm512_mask_add_ps(t, far, t, step);
  }
  static ivec to_int(vec v) { return _mm512_cvtps_epi32(v); }
  static ivec min127(ivec v) { return _mm512_min_epi32(v, _mm512_set1_epi32(127)); }
  static int first_equal(vec v, float x) {
    const unsigned m = _mm512_cmp_ps_mask(v, _mm512_set1_ps(x), _CMP_EQ_OQ);
    return m ? __builtin_ctz(m) : -1;
  }
  static int reduce_add(const ivec* q, int n) {
    ivec s = q[0];
    for (int i = 1; i < n; ++i) s = _mm512_add_epi32(s, q[i]);
    return _mm512_reduce_add_epi32(s);
  }
  static void store_bytes32(uint8_t* p, const ivec* q) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(q[0]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p + 16), _mm512_cvtepi32_epi8(q[1]));
  }
};
#endif

}  // namespace
}  // namespace camelid::kernels::qsimd
