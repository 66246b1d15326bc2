#pragma once
// Register traits `V` of the packed quantized matmul (qgemm_simd.h): 8 rows per AVX2 vector, 16
// per AVX-512 vector, and the byte dot product "acc += 4 products u8 x s8 per int32 lane" with
// VNNI (vpdpbusd) or without (vpmaddubsw + vpmaddwd). What a file can use depends on its -m
// flags, hence the #ifs. TU-local (see qlayout.h).
#include <type_traits>
#include <immintrin.h>

// GCC warns that a vector type's alignment attribute is dropped when it is a template argument
// (std::conditional_t below); only the type is wanted there, so the warning says nothing.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif

namespace camelid::kernels::qsimd {
namespace {

struct V256Base {
  using ivec = __m256i;
  using fvec = __m256;
  static constexpr int R = 8, TV = 2, TT = 2;  // 2 x 2 tiles: accumulators, sums and weights fit 16 registers
  static constexpr int kchunk = 1024;          // K elements per packed chunk (16 KB for 16 rows)
  static ivec izero() { return _mm256_setzero_si256(); }
  static ivec iset1(int32_t v) { return _mm256_set1_epi32(v); }
  static ivec iload(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static ivec iadd(ivec a, ivec b) { return _mm256_add_epi32(a, b); }
  static ivec imullo(ivec a, ivec b) { return _mm256_mullo_epi32(a, b); }
  static ivec imadd16(ivec a, ivec b) { return _mm256_madd_epi16(a, b); }
  static fvec fload(const float* p) { return _mm256_loadu_ps(p); }
  static void fstore(float* p, fvec v) { _mm256_storeu_ps(p, v); }
  static fvec fset1(float v) { return _mm256_set1_ps(v); }
  static fvec fcvt(ivec v) { return _mm256_cvtepi32_ps(v); }
  static fvec fmul(fvec a, fvec b) { return _mm256_mul_ps(a, b); }
  static fvec fmadd(fvec a, fvec b, fvec c) { return _mm256_fmadd_ps(a, b, c); }
  static fvec fnmadd(fvec a, fvec b, fvec c) { return _mm256_fnmadd_ps(a, b, c); }
  static void istore(void* p, ivec v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
  static ivec iand(ivec a, ivec b) { return _mm256_and_si256(a, b); }
  static ivec ior(ivec a, ivec b) { return _mm256_or_si256(a, b); }
  static ivec isub(ivec a, ivec b) { return _mm256_sub_epi32(a, b); }
  static ivec isrl(ivec a, int n) { return _mm256_srl_epi32(a, _mm_cvtsi32_si128(n)); }
  static ivec isll(ivec a, int n) { return _mm256_sll_epi32(a, _mm_cvtsi32_si128(n)); }
  static ivec isra(ivec a, int n) { return _mm256_sra_epi32(a, _mm_cvtsi32_si128(n)); }
  static ivec row_offsets(int first, int last, size_t stride) {  // lane r: min(first + r, last) * stride
    return _mm256_mullo_epi32(_mm256_min_epi32(_mm256_add_epi32(_mm256_set1_epi32(first), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
                                               _mm256_set1_epi32(last)), _mm256_set1_epi32(int(stride)));
  }
  static ivec gather(const uint8_t* base, ivec offsets) { return _mm256_i32gather_epi32(reinterpret_cast<const int*>(base), offsets, 1); }
  // The f16 in the low (high) half of each lane, widened exactly.
  static fvec half_lo(ivec w) {
    const ivec lo = _mm256_and_si256(w, _mm256_set1_epi32(0xffff));
    return _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1)));
  }
  static fvec half_hi(ivec w) { return half_lo(_mm256_srli_epi32(w, 16)); }

  // 8 rows of 32 bytes (src, stride ld) -> 8 vectors of one 4-byte group from each row (dst,
  // stride dst_ld): an 8 x 8 transposition of int32. `flip` turns u + 128 into signed bytes.
  static void transpose(const uint8_t* src, size_t ld, uint8_t* dst, size_t dst_ld, bool flip) {
    __m256i a[8], t[8];
    const __m256i f = _mm256_set1_epi8(flip ? char(0x80) : 0);
    for (int i = 0; i < 8; ++i) a[i] = _mm256_xor_si256(iload(src + i * ld), f);
    for (int i = 0; i < 4; ++i)
      t[2 * i] = _mm256_unpacklo_epi32(a[2 * i], a[2 * i + 1]), t[2 * i + 1] = _mm256_unpackhi_epi32(a[2 * i], a[2 * i + 1]);
    // a[4i + c], lane L: rows 4i..4i+3 of column 4L + c.
    for (int i = 0; i < 2; ++i) {
      a[4 * i + 0] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
      a[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
      a[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
      a[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int c = 0; c < 4; ++c) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + c * dst_ld), _mm256_permute2x128_si256(a[c], a[4 + c], 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + (4 + c) * dst_ld), _mm256_permute2x128_si256(a[c], a[4 + c], 0x31));
    }
  }
};

// Without VNNI: vpmaddubsw (pairs of u8 x s8 into saturating int16; the unsigned weights stay
// below 64, so pairs stay below 2 * 63 * 127) and vpmaddwd by ones to int32. Signed 8-bit weights
// (kSigned) multiply |w| by the activation with w's sign (vpsignb), the classic trick.
struct V256 : V256Base {
  static constexpr bool vnni = false;
  struct WS {
    __m256i abs, w;
  };
  template <bool S>
  using W = std::conditional_t<S, WS, __m256i>;
  template <bool S>
  static W<S> wload(const uint8_t* p) {
    const __m256i w = iload(p);
    if constexpr (S) return WS{_mm256_abs_epi8(w), w};
    else return w;
  }
  template <bool S>  // from unsigned bytes u (signed: u - 128)
  static W<S> from_u(__m256i u) {
    if constexpr (S) {
      const __m256i w = _mm256_xor_si256(u, _mm256_set1_epi8(char(0x80)));
      return WS{_mm256_abs_epi8(w), w};
    } else {
      return u;
    }
  }
  // Unsigned weights only: 16-bit pair sums added without widening, then widened to int32 (the
  // caller bounds the 16-bit sums).
  static ivec dot16(ivec acc16, ivec w, ivec x) { return _mm256_add_epi16(acc16, _mm256_maddubs_epi16(w, x)); }
  static ivec widen16(ivec acc, ivec s16) { return _mm256_add_epi32(acc, _mm256_madd_epi16(s16, _mm256_set1_epi16(1))); }
  template <bool S>
  static ivec dot(ivec acc, const W<S>& w, ivec x) {
    __m256i p;
    if constexpr (S) p = _mm256_maddubs_epi16(w.abs, _mm256_sign_epi8(x, w.w));
    else p = _mm256_maddubs_epi16(w, x);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
  }
};

#ifdef __AVXVNNI__
struct V256Vnni : V256Base {
  static constexpr bool vnni = true;
  template <bool S>
  using W = __m256i;
  template <bool S>
  static W<S> wload(const uint8_t* p) { return iload(p); }
  template <bool S>
  static W<S> from_u(__m256i u) { return u; }
  template <bool S>
  static ivec dot(ivec acc, ivec w, ivec x) { return _mm256_dpbusd_avx_epi32(acc, w, x); }
};
#endif

#ifdef __AVX512F__
struct V512Base {
  using ivec = __m512i;
  using fvec = __m512;
  static constexpr int R = 16, TV = 3, TT = 4;  // 4 x 3 tiles: 12 accumulators + 12 sums + 3 weights of 32 registers
  static constexpr int kchunk = 512;            // K elements per packed chunk (24 KB for 48 rows)
  static ivec izero() { return _mm512_setzero_si512(); }
  static ivec iset1(int32_t v) { return _mm512_set1_epi32(v); }
  static ivec iload(const void* p) { return _mm512_loadu_si512(p); }
  static ivec iadd(ivec a, ivec b) { return _mm512_add_epi32(a, b); }
  static ivec imullo(ivec a, ivec b) { return _mm512_mullo_epi32(a, b); }
  static ivec imadd16(ivec a, ivec b) { return _mm512_madd_epi16(a, b); }
  static fvec fload(const float* p) { return _mm512_loadu_ps(p); }
  static void fstore(float* p, fvec v) { _mm512_storeu_ps(p, v); }
  static fvec fset1(float v) { return _mm512_set1_ps(v); }
  static fvec fcvt(ivec v) { return _mm512_cvtepi32_ps(v); }
  static fvec fmul(fvec a, fvec b) { return _mm512_mul_ps(a, b); }
  static fvec fmadd(fvec a, fvec b, fvec c) { return _mm512_fmadd_ps(a, b, c); }
  static fvec fnmadd(fvec a, fvec b, fvec c) { return _mm512_fnmadd_ps(a, b, c); }
  static void istore(void* p, ivec v) { _mm512_storeu_si512(p, v); }
  static ivec iand(ivec a, ivec b) { return _mm512_and_si512(a, b); }
  static ivec ior(ivec a, ivec b) { return _mm512_or_si512(a, b); }
  static ivec isub(ivec a, ivec b) { return _mm512_sub_epi32(a, b); }
  static ivec isrl(ivec a, int n) { return _mm512_srl_epi32(a, _mm_cvtsi32_si128(n)); }
  static ivec isll(ivec a, int n) { return _mm512_sll_epi32(a, _mm_cvtsi32_si128(n)); }
  static ivec isra(ivec a, int n) { return _mm512_sra_epi32(a, _mm_cvtsi32_si128(n)); }
  static ivec row_offsets(int first, int last, size_t stride) {  // lane r: min(first + r, last) * stride
    const __m512i r = _mm512_add_epi32(_mm512_set1_epi32(first), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    return _mm512_mullo_epi32(_mm512_min_epi32(r, _mm512_set1_epi32(last)), _mm512_set1_epi32(int(stride)));
  }
  static ivec gather(const uint8_t* base, ivec offsets) { return _mm512_i32gather_epi32(offsets, base, 1); }
  static fvec half_lo(ivec w) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(w)); }
  static fvec half_hi(ivec w) { return half_lo(_mm512_srli_epi32(w, 16)); }

  // 16 rows of 64 bytes -> 16 vectors of one 4-byte group from each row: a 16 x 16
  // transposition of int32 (pairs, then quads within 128-bit lanes, then 4 x 4 lanes).
  static void transpose(const uint8_t* src, size_t ld, uint8_t* dst, size_t dst_ld, bool flip) {
    __m512i a[16], t[16];
    const __m512i f = _mm512_set1_epi8(flip ? char(0x80) : 0);
    for (int i = 0; i < 16; ++i) a[i] = _mm512_xor_si512(iload(src + i * ld), f);
    for (int i = 0; i < 8; ++i)
      t[2 * i] = _mm512_unpacklo_epi32(a[2 * i], a[2 * i + 1]), t[2 * i + 1] = _mm512_unpackhi_epi32(a[2 * i], a[2 * i + 1]);
    // a[4i + c], lane L: rows 4i..4i+3 of column 4L + c.
    for (int i = 0; i < 4; ++i) {
      a[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
      a[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
      a[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
      a[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    // Column 4L + c: lane m of it is lane L of a[4m + c].
    for (int c = 0; c < 4; ++c) {
      const __m512i p0 = _mm512_shuffle_i32x4(a[c], a[4 + c], 0x44), p1 = _mm512_shuffle_i32x4(a[c], a[4 + c], 0xee);
      const __m512i q0 = _mm512_shuffle_i32x4(a[8 + c], a[12 + c], 0x44), q1 = _mm512_shuffle_i32x4(a[8 + c], a[12 + c], 0xee);
      _mm512_storeu_si512(dst + c * dst_ld, _mm512_shuffle_i32x4(p0, q0, 0x88));
      _mm512_storeu_si512(dst + (4 + c) * dst_ld, _mm512_shuffle_i32x4(p0, q0, 0xdd));
      _mm512_storeu_si512(dst + (8 + c) * dst_ld, _mm512_shuffle_i32x4(p1, q1, 0x88));
      _mm512_storeu_si512(dst + (12 + c) * dst_ld, _mm512_shuffle_i32x4(p1, q1, 0xdd));
    }
  }
};

// As V256, at 512 bits; AVX-512 has no vpsignb, so the sign goes through a mask of w's sign bits.
struct V512 : V512Base {
  static constexpr bool vnni = false;
  struct WS {
    __m512i abs;
    __mmask64 neg;
  };
  template <bool S>
  using W = std::conditional_t<S, WS, __m512i>;
  template <bool S>
  static W<S> wload(const uint8_t* p) {
    const __m512i w = iload(p);
    if constexpr (S) return WS{_mm512_abs_epi8(w), _mm512_movepi8_mask(w)};
    else return w;
  }
  template <bool S>  // from unsigned bytes u (signed: u - 128)
  static W<S> from_u(__m512i u) {
    if constexpr (S) {
      const __m512i w = _mm512_xor_si512(u, _mm512_set1_epi8(char(0x80)));
      return WS{_mm512_abs_epi8(w), _mm512_movepi8_mask(w)};
    } else {
      return u;
    }
  }
  template <bool S>
  static ivec dot(ivec acc, const W<S>& w, ivec x) {
    __m512i p;
    if constexpr (S) p = _mm512_maddubs_epi16(w.abs, _mm512_mask_sub_epi8(x, w.neg, _mm512_setzero_si512(), x));
    else p = _mm512_maddubs_epi16(w, x);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(p, _mm512_set1_epi16(1)));
  }
};

#ifdef __AVX512VNNI__
struct V512Vnni : V512Base {
  static constexpr bool vnni = true;
  template <bool S>
  using W = __m512i;
  template <bool S>
  static W<S> wload(const uint8_t* p) { return iload(p); }
  template <bool S>
  static W<S> from_u(__m512i u) { return u; }
  template <bool S>
  static ivec dot(ivec acc, ivec w, ivec x) { return _mm512_dpbusd_epi32(acc, w, x); }
};
#endif
#endif

}  // namespace
}  // namespace camelid::kernels::qsimd
