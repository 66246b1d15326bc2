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
// Bits `shift` (and `shift`+1, ... as `mask` says) of every byte, moved to bit `to`: one 16-bit
// shift by the difference, then the mask at its destination, which drops what crossed from the
// neighbouring byte (the field lies inside its byte, so crossed bits land outside the mask).
inline __m256i bits(__m256i v, int shift, int mask, int to) {
  const int d = to - shift;
  const __m256i moved = d > 0 ? _mm256_slli_epi16(v, d) : d < 0 ? _mm256_srli_epi16(v, -d) : v;
  return _mm256_and_si256(moved, _mm256_set1_epi8(char(mask << to)));
}
inline void store16(uint8_t* p, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
inline void store32(uint8_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
inline __m128i load16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// The IQ4 codebook + 128 (kValuesIQ4NL), one byte per nibble value, for vpshufb.
inline __m128i iq4_table() {
  return _mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, char(129), char(141), char(153), char(166), char(181),
                       char(197), char(217), char(241));
}

// 16 nibbles -> 32 bytes (low nibbles first), through the IQ4 codebook (+128) if `codebook`.
inline __m256i nibbles32(const uint8_t* qs, bool codebook) {
  const __m128i v = load16(qs);
  __m128i lo = low_nibbles(v), hi = high_nibbles(v);
  if (codebook) lo = _mm_shuffle_epi8(iq4_table(), lo), hi = _mm_shuffle_epi8(iq4_table(), hi);
  return _mm256_set_m128i(hi, lo);
}

// Q5_0 / Q5_1: 16 nibble bytes plus the fifth bits in a 32-bit word (bit j: element j).
inline __m256i nibbles32_q5(const uint8_t* qh, const uint8_t* qs) {
  const __m128i v = load16(qs);
  const __m256i n = _mm256_set_m128i(high_nibbles(v), low_nibbles(v));
  // Byte j gets byte j / 8 of qh, then tests its bit j % 8.
  const __m256i rep = _mm256_shuffle_epi8(_mm256_set1_epi32(int(q::load_u32(qh))),
                                          _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201));
  const __m256i high = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(rep, bit), bit), _mm256_set1_epi8(16));
  return _mm256_or_si256(n, high);
}

// Elements 32v .. 32v+31 of one weight block as bytes u, in a register (the streaming decode
// kernel multiplies them where they lie; values_simd stores them for packing).
template <DType DT>
inline __m256i unpack32(const uint8_t* b, int v) {
  if constexpr (DT == DType::Q4_0) {
    return nibbles32(b + 2, false);
  } else if constexpr (DT == DType::Q4_1) {
    return nibbles32(b + 4, false);
  } else if constexpr (DT == DType::IQ4_NL) {
    return nibbles32(b + 2, true);
  } else if constexpr (DT == DType::Q5_0) {
    return nibbles32_q5(b + 2, b + 6);
  } else if constexpr (DT == DType::Q5_1) {
    return nibbles32_q5(b + 4, b + 8);
  } else if constexpr (DT == DType::Q8_0) {
    return _mm256_xor_si256(load32(b + 2), _mm256_set1_epi8(char(0x80)));
  } else if constexpr (DT == DType::Q2_K) {
    return bits(load32(b + 16 + 32 * (v / 4)), 2 * (v % 4), 3, 0);
  } else if constexpr (DT == DType::Q3_K) {
    const int n = v / 4, j = v % 4;
    return _mm256_or_si256(bits(load32(b + 32 + 32 * n), 2 * j, 3, 0), bits(load32(b), 4 * n + j, 1, 2));
  } else if constexpr (DT == DType::Q4_K) {
    const __m256i q = load32(b + 16 + 32 * (v / 2));
    return v % 2 ? nibbles_hi(q) : nibbles_lo(q);
  } else if constexpr (DT == DType::Q5_K) {
    const __m256i q = load32(b + 48 + 32 * (v / 2)), qh = load32(b + 16);
    return _mm256_or_si256(v % 2 ? nibbles_hi(q) : nibbles_lo(q), bits(qh, v, 1, 4));
  } else if constexpr (DT == DType::Q6_K) {
    const int n = v / 4, c = v % 4;  // c: low nibbles of bytes 0-31, 32-63, then high nibbles
    const __m256i q = load32(b + 64 * n + 32 * (c % 2)), h = load32(b + 128 + 32 * n);
    return _mm256_or_si256(c < 2 ? nibbles_lo(q) : nibbles_hi(q), bits(h, 2 * c, 3, 4));
  } else {
    static_assert(DT == DType::IQ4_XS, "a type without SIMD unpacking");
    return nibbles32(b + 8 + 16 * v, true);
  }
}

// Elements 32v .. 32v+31 of the blocks at a and b, two rows in each register: lo holds elements
// 0-15 of a's then of b's, hi elements 16-31 (the decode kernel multiplies both rows by one
// broadcast half of the activations). A 16-byte load per row and half: unpack32's cross-lane
// insert is saved for the nibble types. Types with five or six bits, or 16-element sub-blocks,
// gain nothing from pairing (more inserts, two reductions) and keep unpack32.
template <DType DT>
inline void unpack_pair(const uint8_t* a, const uint8_t* b, int v, __m256i& lo, __m256i& hi) {
  auto both = [](const uint8_t* pa, const uint8_t* pb) { return _mm256_set_m128i(load16(pb), load16(pa)); };
  if constexpr (DT == DType::Q4_0 || DT == DType::Q4_1 || DT == DType::IQ4_NL) {
    const int off = DT == DType::Q4_1 ? 4 : 2;
    const __m256i q = both(a + off, b + off);
    lo = nibbles_lo(q), hi = nibbles_hi(q);
    if constexpr (DT == DType::IQ4_NL) {
      const __m256i table = _mm256_broadcastsi128_si256(iq4_table());
      lo = _mm256_shuffle_epi8(table, lo), hi = _mm256_shuffle_epi8(table, hi);
    }
  } else if constexpr (DT == DType::Q8_0) {
    const __m256i f = _mm256_set1_epi8(char(0x80));
    lo = _mm256_xor_si256(both(a + 2, b + 2), f), hi = _mm256_xor_si256(both(a + 18, b + 18), f);
  } else {
    static_assert(DT == DType::Q4_K, "a type without paired unpacking");
    const int off = 16 + 32 * (v / 2);
    const __m256i q0 = both(a + off, b + off), q1 = both(a + off + 16, b + off + 16);
    lo = v % 2 ? nibbles_hi(q0) : nibbles_lo(q0), hi = v % 2 ? nibbles_hi(q1) : nibbles_lo(q1);
  }
}

template <DType DT>
inline void values_simd(const uint8_t* b, uint8_t* u) {
  for (int v = 0; v < q::Layout<DT>::QB / 32; ++v) store32(u + 32 * v, unpack32<DT>(b, v));
}

}  // namespace
}  // namespace camelid::kernels::qsimd
