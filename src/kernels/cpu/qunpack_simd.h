#pragma once
// The bytes u of one weight block in element order (qlayout.h's values(), vectorized with
// SSE/AVX2 so both SIMD builds share it). TU-local: see qlayout.h.
#include <immintrin.h>

#include "kernels/cpu/qlayout.h"

namespace camelid::kernels::qsimd {
namespace {

inline __m128i low_nibbles(__m128i v) { return _mm_and_si128(v, _mm_set1_epi8(15)); }
inline __m128i high_nibbles(__m128i v) { return _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(15)); }
inline __m256i nibbles_lo(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi8(15)); }
inline __m256i nibbles_hi(__m256i v) { return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(15)); }
// Bits `shift` (and `shift`+1, ... as `mask` says) of every byte, moved to bit `to`. 16-bit
// shifts are fine: the mask drops what crosses from the neighbouring byte.
inline __m256i bits(__m256i v, int shift, int mask, int to) {
  const __m256i b = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(shift)), _mm256_set1_epi8(char(mask)));
  return _mm256_sll_epi16(b, _mm_cvtsi32_si128(to));
}
inline void store16(uint8_t* p, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
inline void store32(uint8_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
inline __m128i load16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// 16 nibbles -> 32 bytes (low nibbles first), through the IQ4 codebook (+128) if `codebook`.
inline void nibbles32(const uint8_t* qs, uint8_t* u, bool codebook) {
  const __m128i v = load16(qs);
  __m128i lo = low_nibbles(v), hi = high_nibbles(v);
  if (codebook) {
    const __m128i table = _mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, char(129), char(141), char(153), char(166),
                                        char(181), char(197), char(217), char(241));  // kValuesIQ4NL + 128
    lo = _mm_shuffle_epi8(table, lo), hi = _mm_shuffle_epi8(table, hi);
  }
  store16(u, lo), store16(u + 16, hi);
}

// Q5_0 / Q5_1: 16 nibble bytes plus the fifth bits in a 32-bit word (bit j: element j).
inline void nibbles32_q5(const uint8_t* qh, const uint8_t* qs, uint8_t* u) {
  const __m128i v = load16(qs);
  const __m256i n = _mm256_set_m128i(high_nibbles(v), low_nibbles(v));
  // Byte j gets byte j / 8 of qh, then tests its bit j % 8.
  const __m256i rep = _mm256_shuffle_epi8(_mm256_set1_epi32(int(q::load_u32(qh))),
                                          _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201));
  const __m256i high = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(rep, bit), bit), _mm256_set1_epi8(16));
  store32(u, _mm256_or_si256(n, high));
}

template <DType DT>
inline void values_simd(const uint8_t* b, uint8_t* u) {
  if constexpr (DT == DType::Q4_0) {
    nibbles32(b + 2, u, false);
  } else if constexpr (DT == DType::Q4_1) {
    nibbles32(b + 4, u, false);
  } else if constexpr (DT == DType::IQ4_NL) {
    nibbles32(b + 2, u, true);
  } else if constexpr (DT == DType::Q5_0) {
    nibbles32_q5(b + 2, b + 6, u);
  } else if constexpr (DT == DType::Q5_1) {
    nibbles32_q5(b + 4, b + 8, u);
  } else if constexpr (DT == DType::Q8_0) {
    store32(u, _mm256_xor_si256(load32(b + 2), _mm256_set1_epi8(char(0x80))));
  } else if constexpr (DT == DType::Q2_K) {
    for (int n = 0; n < 2; ++n) {
      const __m256i q = load32(b + 16 + 32 * n);
      for (int j = 0; j < 4; ++j) store32(u + 128 * n + 32 * j, bits(q, 2 * j, 3, 0));
    }
  } else if constexpr (DT == DType::Q3_K) {
    const __m256i hm = load32(b);
    for (int n = 0; n < 2; ++n) {
      const __m256i q = load32(b + 32 + 32 * n);
      for (int j = 0; j < 4; ++j)
        store32(u + 128 * n + 32 * j, _mm256_or_si256(bits(q, 2 * j, 3, 0), bits(hm, 4 * n + j, 1, 2)));
    }
  } else if constexpr (DT == DType::Q4_K) {
    for (int i = 0; i < 4; ++i) {
      const __m256i q = load32(b + 16 + 32 * i);
      store32(u + 64 * i, nibbles_lo(q)), store32(u + 64 * i + 32, nibbles_hi(q));
    }
  } else if constexpr (DT == DType::Q5_K) {
    const __m256i qh = load32(b + 16);
    for (int i = 0; i < 4; ++i) {
      const __m256i q = load32(b + 48 + 32 * i);
      store32(u + 64 * i, _mm256_or_si256(nibbles_lo(q), bits(qh, 2 * i, 1, 4)));
      store32(u + 64 * i + 32, _mm256_or_si256(nibbles_hi(q), bits(qh, 2 * i + 1, 1, 4)));
    }
  } else if constexpr (DT == DType::Q6_K) {
    for (int n = 0; n < 2; ++n) {
      const __m256i a = load32(b + 64 * n), c = load32(b + 64 * n + 32), h = load32(b + 128 + 32 * n);
      uint8_t* o = u + 128 * n;
      store32(o, _mm256_or_si256(nibbles_lo(a), bits(h, 0, 3, 4)));
      store32(o + 32, _mm256_or_si256(nibbles_lo(c), bits(h, 2, 3, 4)));
      store32(o + 64, _mm256_or_si256(nibbles_hi(a), bits(h, 4, 3, 4)));
      store32(o + 96, _mm256_or_si256(nibbles_hi(c), bits(h, 6, 3, 4)));
    }
  } else if constexpr (DT == DType::IQ4_XS) {
    for (int j = 0; j < 8; ++j) nibbles32(b + 8 + 16 * j, u + 32 * j, true);
  } else {
    q::Layout<DT>::values(b, u);
  }
}

}  // namespace
}  // namespace camelid::kernels::qsimd
