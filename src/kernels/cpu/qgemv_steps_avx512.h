#pragma once
// How each weight type's bytes meet the activations in the AVX-512 decode kernel
// (qgemv_avx512.h): a step covers 128 elements of a row (4 blocks of 32, or half a super-block)
// in NV vectors of bytes u going into NC accumulators; acc[i]: the accumulator of vector i;
// sub[c][l]: the (sub-)block, within the step, that 128-bit lane l of accumulator c sums (16
// elements per lane and vector: a lane sums 16 or 32 elements of one sub-block); x(): the
// step's activations (in element order) permuted like the weights, once per call; w(): the
// bytes of row `row` for the step starting at element k. TU-local (see qlayout.h).
#include <array>
#include <immintrin.h>

#include "kernels/cpu/qlayout.h"

namespace camelid::kernels::qsimd {
namespace {

inline __m512i load4x16(const uint8_t* p, size_t stride) {  // 4 x 16 bytes at p + i * stride
  __m512i z = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  z = _mm512_inserti32x4(z, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + stride)), 1);
  z = _mm512_inserti32x4(z, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * stride)), 2);
  return _mm512_inserti32x4(z, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 3 * stride)), 3);
}
inline __m512i load4(const uint8_t* a, const uint8_t* b, const uint8_t* c, const uint8_t* d) {  // 16 bytes each
  __m512i z = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a)));
  z = _mm512_inserti32x4(z, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1);
  z = _mm512_inserti32x4(z, _mm_loadu_si128(reinterpret_cast<const __m128i*>(c)), 2);
  return _mm512_inserti32x4(z, _mm_loadu_si128(reinterpret_cast<const __m128i*>(d)), 3);
}
inline __m512i nib_lo(__m512i v) { return _mm512_and_si512(v, _mm512_set1_epi8(15)); }
inline __m512i nib_hi(__m512i v) { return _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(15)); }
inline __m512i codebook(__m512i nibbles) {  // kValuesIQ4NL + 128
  const __m512i t = _mm512_broadcast_i32x4(_mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, char(129), char(141), char(153),
                                                         char(166), char(181), char(197), char(217), char(241)));
  return _mm512_shuffle_epi8(t, nibbles);
}
// Bit `c_l` of every byte moved to bit `to` (and only it), c_l per 256-bit half: {c0, c1}. The
// 16-bit shifts only mix in bits the mask drops.
inline __m512i bit_at(__m512i v, int c0, int c1, int to) {
  const __m512i counts = _mm512_inserti64x4(_mm512_set1_epi16(short(c0)), _mm256_set1_epi16(short(c1)), 1);
  return _mm512_and_si512(_mm512_slli_epi16(_mm512_srlv_epi16(v, counts), to), _mm512_set1_epi8(char(1 << to)));
}
inline __m512i broadcast32(const uint8_t* p) {  // 32 bytes into both halves
  return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

template <DType DT>
struct Step;

// 32-element blocks, 4 per step: lane l of both vectors is block l, first its elements 0..15,
// then 16..31 (the low and high nibbles of its 16 bytes for the 4-bit types).
struct Blocks4 {
  static constexpr bool kHdr = false;  // w() also returns the block headers (see Nibbles4d)
  static constexpr int NV = 2, NC = 1;
  static constexpr int acc[NV] = {0, 0}, sub[NC][4] = {{0, 1, 2, 3}};
  static void x(const int8_t* x, __m512i xv[NV]) {
    xv[0] = load4x16(reinterpret_cast<const uint8_t*>(x), 32);
    xv[1] = load4x16(reinterpret_cast<const uint8_t*>(x + 16), 32);
  }
};

template <int BB, int QS, bool kCodebook>  // QS: offset of the 16 bytes of nibbles
struct Nibbles4 : Blocks4 {
  static void w(const uint8_t* row, int k, __m512i wv[NV]) {
    const __m512i q = load4x16(row + size_t(k / 32) * BB + QS, BB);
    wv[0] = nib_lo(q), wv[1] = nib_hi(q);
    if constexpr (kCodebook) wv[0] = codebook(wv[0]), wv[1] = codebook(wv[1]);
  }
};

// Blocks of an f16 d and 16 bytes of nibbles (Q4_0, IQ4_NL): the step's 72 bytes are read as
// bytes 0..63 and 56..71 and the nibbles picked out by one word permutation (the blocks' nibbles
// start at even offsets), instead of four 16-byte loads and three inserts; the first vector,
// holding the 4 blocks' d at words 0, 9, 18, 27, is returned for the scales (Headers below).
template <bool kCodebook>
struct Nibbles4d : Blocks4 {
  static constexpr bool kHdr = true;
  static void w(const uint8_t* row, int k, __m512i wv[NV], __m512i& hdr) {
    const uint8_t* p = row + size_t(k / 32) * 18;
    hdr = _mm512_loadu_si512(p);
    const __m512i tail = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 56)));
    // Lane j: words 9j+1 .. 9j+8 of the step; from the tail (word 28 = its word 0) past word 31.
    alignas(64) static constexpr int16_t idx[32] = {1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
                                                    19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 36, 37, 38, 39};
    const __m512i q = _mm512_permutex2var_epi16(hdr, _mm512_load_si512(idx), tail);
    wv[0] = nib_lo(q), wv[1] = nib_hi(q);
    if constexpr (kCodebook) wv[0] = codebook(wv[0]), wv[1] = codebook(wv[1]);
  }
};
template <> struct Step<DType::Q4_0> : Nibbles4d<false> {};
template <> struct Step<DType::Q4_1> : Nibbles4<20, 4, false> {};
template <> struct Step<DType::IQ4_NL> : Nibbles4d<true> {};

// The d of 4 blocks (words 0, 9, 18, 27 of each row's first step vector) for 16 rows, moved into
// two vectors of [block][row] f16 (blocks 0-1, 2-3) by a tree of word permutations (rows 2, 4, 8,
// 16 at a time, layout [block][row] at each level): cheaper than a gather per block.
struct Headers {
  // Two groups of n rows each in layout [block j][row r] (j < 4) -> one group of 2n rows.
  template <int n>
  static __m512i merge(__m512i x, __m512i y) {
    alignas(64) static constexpr auto idx = [] {
      std::array<int16_t, 32> v{};
      for (int j = 0; j < 4; ++j)
        for (int r = 0; r < 2 * n && j * 2 * n + r < 32; ++r) v[j * 2 * n + r] = int16_t(r < n ? j * n + r : 32 + j * n + r - n);
      return v;
    }();
    return _mm512_permutex2var_epi16(x, _mm512_load_si512(idx.data()), y);
  }
  static __m512i pair(__m512i a, __m512i b) {  // rows' step vectors -> [block][row] for 2 rows
    alignas(64) static constexpr int16_t idx[32] = {0, 32, 9, 41, 18, 50, 27, 59};
    return _mm512_permutex2var_epi16(a, _mm512_load_si512(idx), b);
  }
  // Two groups of 8 rows -> blocks h*2, h*2+1 of all 16 rows.
  template <int h>
  static __m512i last(__m512i x, __m512i y) {
    alignas(64) static constexpr auto idx = [] {
      std::array<int16_t, 32> v{};
      for (int jj = 0; jj < 2; ++jj)
        for (int r = 0; r < 16; ++r) {
          const int j = 2 * h + jj;
          v[jj * 16 + r] = int16_t(r < 8 ? j * 8 + r : 32 + j * 8 + r - 8);
        }
      return v;
    }();
    return _mm512_permutex2var_epi16(x, _mm512_load_si512(idx.data()), y);
  }
};

// Q5_0 / Q5_1: the fifth bits (bit j of the block's 32-bit qh: element j) become byte masks.
template <int BB, int QH>
struct Five4 : Blocks4 {
  static void w(const uint8_t* row, int k, __m512i wv[NV]) {
    const uint8_t* b = row + size_t(k / 32) * BB;
    const __m512i q = load4x16(b + QH + 4, BB);
    uint64_t lo = 0, hi = 0;
    for (int i = 0; i < 4; ++i) {
      const uint64_t h = q::load_u32(b + i * BB + QH);
      lo |= (h & 0xffff) << (16 * i), hi |= (h >> 16) << (16 * i);
    }
    const __m512i sixteen = _mm512_set1_epi8(16);
    wv[0] = _mm512_or_si512(nib_lo(q), _mm512_maskz_mov_epi8(__mmask64(lo), sixteen));
    wv[1] = _mm512_or_si512(nib_hi(q), _mm512_maskz_mov_epi8(__mmask64(hi), sixteen));
  }
};
template <> struct Step<DType::Q5_0> : Five4<22, 2> {};
template <> struct Step<DType::Q5_1> : Five4<24, 4> {};

template <>
struct Step<DType::Q8_0> : Blocks4 {
  static void w(const uint8_t* row, int k, __m512i wv[NV]) {
    const uint8_t* blk = row + size_t(k / 32) * 34;
    const __m512i f = _mm512_set1_epi8(char(0x80));
    auto two = [&](const uint8_t* p) {  // two blocks' 32 bytes, + 128
      const __m512i v = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
      return _mm512_xor_si512(_mm512_inserti64x4(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 34)), 1), f);
    };
    const __m512i a = two(blk + 2), b = two(blk + 70);  // lanes: b0 lo, b0 hi, b1 lo, b1 hi
    wv[0] = _mm512_shuffle_i32x4(a, b, 0x88), wv[1] = _mm512_shuffle_i32x4(a, b, 0xdd);
  }
};

// IQ4_XS, half h of a super-block: sub-blocks 4h..4h+3 of 32, 16 bytes of nibbles each, in a row.
template <>
struct Step<DType::IQ4_XS> : Blocks4 {
  static void w(const uint8_t* row, int k, __m512i wv[NV]) {
    const __m512i q = _mm512_loadu_si512(row + size_t(k / 256) * 136 + 8 + 64 * ((k % 256) / 128));
    wv[0] = codebook(nib_lo(q)), wv[1] = codebook(nib_hi(q));
  }
};

// Q4_K / Q5_K, half h of a super-block (sub-blocks 4h..4h+3 of 32): 64 bytes of nibbles hold
// them as low (4h, 4h+2) and high (4h+1, 4h+3) halves; lanes are regrouped to one sub-block each.
struct KHalves {
  static constexpr bool kHdr = false;
  static constexpr int NV = 2, NC = 1;
  static constexpr int acc[NV] = {0, 0}, sub[NC][4] = {{0, 2, 1, 3}};
  static void x(const int8_t* x, __m512i xv[NV]) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(x);
    xv[0] = load4(p, p + 64, p + 32, p + 96), xv[1] = load4(p + 16, p + 80, p + 48, p + 112);
  }
  // lo lanes: sb0 (0..15), sb0 (16..31), sb2, sb2; hi: sb1, sb1, sb3, sb3.
  static void regroup(__m512i lo, __m512i hi, __m512i wv[NV]) {
    wv[0] = _mm512_shuffle_i32x4(lo, hi, 0x88), wv[1] = _mm512_shuffle_i32x4(lo, hi, 0xdd);
  }
};

template <>
struct Step<DType::Q4_K> : KHalves {
  static void w(const uint8_t* row, int k, __m512i wv[NV]) {
    const __m512i q = _mm512_loadu_si512(row + size_t(k / 256) * 144 + 16 + 64 * ((k % 256) / 128));
    regroup(nib_lo(q), nib_hi(q), wv);
  }
};

// Q5_K: plus bit j (the sub-block) of qh[l] for element l of sub-block j.
template <>
struct Step<DType::Q5_K> : KHalves {
  static void w(const uint8_t* row, int k, __m512i wv[NV]) {
    const uint8_t* b = row + size_t(k / 256) * 176;
    const int h = (k % 256) / 128;
    const __m512i q = _mm512_loadu_si512(b + 48 + 64 * h), qh = broadcast32(b + 16);
    regroup(_mm512_or_si512(nib_lo(q), bit_at(qh, 4 * h, 4 * h + 2, 4)), _mm512_or_si512(nib_hi(q), bit_at(qh, 4 * h + 1, 4 * h + 3, 4)), wv);
  }
};

// 16-element sub-blocks (Q2_K, Q3_K, Q6_K), half a super-block: elements in order, lane l of
// vector v is sub-block 4v + l.
struct Subs16 {
  static constexpr bool kHdr = false;
  static constexpr int NV = 2, NC = 2;
  static constexpr int acc[NV] = {0, 1}, sub[NC][4] = {{0, 1, 2, 3}, {4, 5, 6, 7}};
  static void x(const int8_t* x, __m512i xv[NV]) { xv[0] = _mm512_loadu_si512(x), xv[1] = _mm512_loadu_si512(x + 64); }
};

template <>
struct Step<DType::Q6_K> : Subs16 {
  static void w(const uint8_t* row, int k, __m512i wv[NV]) {
    const uint8_t* b = row + size_t(k / 256) * 210;
    const int n = (k % 256) / 128;
    const __m512i ql = _mm512_loadu_si512(b + 64 * n);  // elements 0..31 / 32..63 low nibbles; high: 64..127
    const __m512i h = broadcast32(b + 128 + 32 * n);
    const __m512i h01 = _mm512_mask_blend_epi64(0xf0, h, _mm512_srli_epi16(h, 2));  // bits 0-1 | bits 2-3
    const __m512i h23 = _mm512_srli_epi16(h01, 4);                                   // bits 4-5 | bits 6-7
    const __m512i m = _mm512_set1_epi8(0x30);
    wv[0] = _mm512_or_si512(nib_lo(ql), _mm512_and_si512(_mm512_slli_epi16(h01, 4), m));
    wv[1] = _mm512_or_si512(nib_hi(ql), _mm512_and_si512(_mm512_slli_epi16(h23, 4), m));
  }
};

// Q2_K half n: element 32j + l is bits 2j..2j+1 of qs[32n + l].
inline void two_bits(__m512i q, __m512i wv[2]) {
  const __m512i m = _mm512_set1_epi8(3);
  wv[0] = _mm512_and_si512(_mm512_srlv_epi16(q, _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1)), m);
  wv[1] = _mm512_and_si512(_mm512_srlv_epi16(q, _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1)), m);
}

template <>
struct Step<DType::Q2_K> : Subs16 {
  static void w(const uint8_t* row, int k, __m512i wv[NV]) {
    two_bits(broadcast32(row + size_t(k / 256) * 84 + 16 + 32 * ((k % 256) / 128)), wv);
  }
};

// Q3_K: plus 4 where bit 4n + j of hmask[l] is set.
template <>
struct Step<DType::Q3_K> : Subs16 {
  static void w(const uint8_t* row, int k, __m512i wv[NV]) {
    const uint8_t* b = row + size_t(k / 256) * 110;
    const int n = (k % 256) / 128;
    two_bits(broadcast32(b + 32 + 32 * n), wv);
    const __m512i hm = broadcast32(b);
    wv[0] = _mm512_or_si512(wv[0], bit_at(hm, 4 * n, 4 * n + 1, 2));
    wv[1] = _mm512_or_si512(wv[1], bit_at(hm, 4 * n + 2, 4 * n + 3, 2));
  }
};

}  // namespace
}  // namespace camelid::kernels::qsimd
