#pragma once
// Quantized matmul on interleaved weights (qpanel.h), 256-bit AVX2, up to 4, 6 or 8 activation
// rows per pass over a panel (kNT, per type). Each 32-byte load holds 4 quant bytes of 8 rows,
// one row per 32-bit lane: a broadcast of the 4
// matching activation bytes multiplies all 8 rows (vpmaddubsw), 16-bit pair sums build up in
// their row's lane over a sub-block (bounded below 2^15: see each type) and one vpmaddwd by the
// sub-block scales (or by ones) turns them into int32. No unpacking of rows, no horizontal
// reduction, the 8 rows' scales in one load: the weights stream as one sequence per thread.
// The integer sums are exact and the float steps are qmatmul.h's, in its order, so the results
// are those of the row-major kernels bit for bit. TU-local (see qlayout.h).
#include <immintrin.h>

#include <cstring>

#include "core/error.h"
#include "kernels/cpu/qlayout.h"
#include "kernels/cpu/qmatmul.h"
#include "kernels/cpu/qpanel.h"
#include "kernels/cpu/qunpack_simd.h"

namespace camelid::kernels::qsimd {
namespace {

struct Panel256 {
  // 4 activation bytes at p in every lane.
  static __m256i bcast(const uint8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
  }
  // 8 f16 at p, widened.
  static __m256 halves(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  // 8 int8 / uint8 at p as int32 lanes.
  static __m256i i8(const uint8_t* p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
  static __m256i u8(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
  // An int32 scale per lane -> the same scale in both 16-bit halves (vpmaddwd multiplies a lane's
  // two pair sums by it and adds them).
  static __m256i pair16(__m256i s) { return _mm256_or_si256(_mm256_and_si256(s, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(s, 16)); }
  static __m256i mb(__m256i u, __m256i x) { return _mm256_maddubs_epi16(u, x); }
  static __m256i add16(__m256i a, __m256i b) { return _mm256_add_epi16(a, b); }
  static __m256i add32(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }
  static __m256i widen(__m256i s16) { return _mm256_madd_epi16(s16, _mm256_set1_epi16(1)); }
};

template <DType DT>
struct QPanelGemv {
  using P = Panel256;
  static constexpr int kRows = panel::kRows, kAhead = 1024;
  static constexpr int BB = q::Layout<DT>::BB, PB = kRows * BB;  // bytes of a block, of a panel block
  static constexpr DType X = q::Layout<DT>::X;  // Q8_0: d qs[32]; Q8_1: d s qs[32]; Q8_K: d(f32) qs[256] bsums
  static constexpr int XB = X == DType::Q8_K ? 292 : X == DType::Q8_1 ? 36 : 34, XO = X == DType::Q8_0 ? 2 : 4;

  // One panel (8 rows from pan) times activation rows t0 .. t0+NT-1: Y[t * ldy + r] (t from 0).
  template <int NT>
  static void panel_rows(const QuantizedActivations& a, int t0, const uint8_t* pan, float* Y, size_t ldy) {
    __m256 fa[NT];
    for (int t = 0; t < NT; ++t) fa[t] = _mm256_setzero_ps();
    const uint8_t* x0 = a.q + size_t(t0) * a.row_bytes + XO;
    for (int b = 0; b < a.nb; ++b) {
      const uint8_t* pb = pan + size_t(b) * PB;
      const uint8_t* xb = x0 + size_t(b) * XB;
      // The panels are one sequential stream: fetched 1 KiB ahead (measured on Zen 3, decode of
      // Q4_0 / Q8_0 bench-450m: 512 B and 2-4 KiB ahead were slower, none 15% slower).
      for (int off = 0; off < PB; off += 64) _mm_prefetch(reinterpret_cast<const char*>(pb + kAhead + off), _MM_HINT_T0);
      if constexpr (DT == DType::Q4_0 || DT == DType::Q4_1 || DT == DType::Q5_0 || DT == DType::Q5_1) {
        // d[8] | (Q4_1, Q5_1: m[8]) | (Q5_0, Q5_1: qh, 4 bytes x 8) | qs: 4 units. Unit k, lane r:
        // bytes 4k..4k+3 of row r (elements 4k.. low nibbles, 16+4k.. high); the fifth bit of
        // element e is bit e of qh. Pairs of 15 * 127 (8 products summed: |sum| <= 30480) or 31 *
        // 127 (Q5: 4 products, |sum| <= 31496) in 16 bits.
        constexpr bool has_m = DT == DType::Q4_1 || DT == DType::Q5_1, five = DT == DType::Q5_0 || DT == DType::Q5_1;
        constexpr int kQh = has_m ? 32 : 16, kQs = kQh + (five ? 32 : 0), kRun = five ? 2 : 4;
        const __m256 d = P::halves(pb);
        __m256i lo[4], hi[4];
        for (int k = 0; k < 4; ++k) {
          const __m256i q = load32(pb + kQs + 32 * k);
          lo[k] = nibbles_lo(q), hi[k] = nibbles_hi(q);
          if constexpr (five) {  // bits 4k.. (low) and 16 + 4k.. (high) of qh, one per byte, to bit 4
            const __m256i v = _mm256_srli_epi32(load32(pb + kQh), 4 * k), bit = _mm256_set1_epi32(0x08040201);
            // every byte of a lane: its byte 0 (bits 4k..), or its byte 2 (bits 16 + 4k..)
            const __m256i lo5 = _mm256_shuffle_epi8(v, _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12)));
            const __m256i hi5 = _mm256_shuffle_epi8(v, _mm256_broadcastsi128_si256(_mm_setr_epi8(2, 2, 2, 2, 6, 6, 6, 6, 10, 10, 10, 10, 14, 14, 14, 14)));
            const __m256i m16 = _mm256_set1_epi8(0x10);
            lo[k] = _mm256_or_si256(lo[k], _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(lo5, bit), bit), m16));
            hi[k] = _mm256_or_si256(hi[k], _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hi5, bit), bit), m16));
          }
        }
        for (int t = 0; t < NT; ++t) {
          const uint8_t* x = xb + size_t(t) * a.row_bytes;
          const size_t bt = size_t(t0 + t) * a.nb + b;
          __m256i S = _mm256_setzero_si256();
          for (int k0 = 0; k0 < 4; k0 += kRun) {
            __m256i s = _mm256_setzero_si256();
            for (int k = k0; k < k0 + kRun; ++k) s = P::add16(s, P::add16(P::mb(lo[k], P::bcast(x + 4 * k)), P::mb(hi[k], P::bcast(x + 16 + 4 * k))));
            S = P::add32(S, P::widen(s));
          }
          if constexpr (!has_m) S = P::add32(S, _mm256_set1_epi32(a.bias[bt]));
          fa[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S), _mm256_mul_ps(d, _mm256_set1_ps(a.dx[bt])), fa[t]);
          if constexpr (has_m) fa[t] = _mm256_fmadd_ps(P::halves(pb + 16), _mm256_set1_ps(a.sx[bt]), fa[t]);
        }
      } else if constexpr (DT == DType::Q8_0) {
        // d[8], then 8 units of signed qs. Signed weights: |w| times the activations with w's
        // sign (vpsignb), pairs up to 2 * 128 * 127 widened one at a time. S = sum w x, which is
        // the row-major kernels' sum u x - 128 xsum (u = w + 128).
        const __m256 d = P::halves(pb);
        __m256i S[NT];
        for (int t = 0; t < NT; ++t) S[t] = _mm256_setzero_si256();
        for (int k = 0; k < 8; ++k) {
          const __m256i w = load32(pb + 16 + 32 * k), aw = _mm256_abs_epi8(w);
          for (int t = 0; t < NT; ++t)
            S[t] = P::add32(S[t], P::widen(P::mb(aw, _mm256_sign_epi8(P::bcast(xb + size_t(t) * a.row_bytes + 4 * k), w))));
        }
        for (int t = 0; t < NT; ++t) {
          const size_t bt = size_t(t0 + t) * a.nb + b;
          fa[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[t]), _mm256_mul_ps(d, _mm256_set1_ps(a.dx[bt])), fa[t]);
        }
      } else if constexpr (DT == DType::IQ4_NL || DT == DType::IQ4_XS) {
        // IQ4_NL: d[8] | qs: 4 units, as Q4_0's. IQ4_XS: d[8] | scales_h: u16 x 8 | scales_l: 4
        // bytes x 8 | qs: 32 units, sub-block j in units 4j .. 4j+3 (low nibbles: elements 32j +
        // 4i .., high: 32j + 16 + 4i ..). The nibbles index the signed codebook (vpshufb); as for
        // Q8_0, |w| times x with w's sign: a pair is at most 2 * 127 * 127, one vpmaddwd each, by
        // the sub-block scale (IQ4_XS, 6 bits minus 32) or by ones. S = sum w x, the row-major
        // kernels' sum u x - 128 xsum.
        constexpr bool xs = DT == DType::IQ4_XS;
        constexpr int NJ = xs ? 8 : 1, kQs = xs ? 64 : 16;
        const __m256i tw = _mm256_broadcastsi128_si256(_mm_xor_si128(iq4_table(), _mm_set1_epi8(char(0x80))));
        const __m256i ta = _mm256_abs_epi8(tw);
        const __m256 d = P::halves(pb);
        __m256i S[NT];
        for (int t = 0; t < NT; ++t) S[t] = _mm256_setzero_si256();
        // IQ4_XS's scales, a lane per row: scales_l (4 bits per sub-block), scales_h (2 bits each)
        const __m256i sl = xs ? load32(pb + 32) : _mm256_setzero_si256(), sh = xs ? _mm256_cvtepu16_epi32(load16(pb + 16)) : sl;
        for (int j = 0; j < NJ; ++j) {
          __m256i sc16 = _mm256_set1_epi16(1);
          if constexpr (xs) {
            const __m256i lo4 = _mm256_and_si256(_mm256_srli_epi32(sl, 4 * j), _mm256_set1_epi32(15));
            const __m256i hi2 = _mm256_and_si256(_mm256_srli_epi32(sh, 2 * j), _mm256_set1_epi32(3));
            sc16 = P::pair16(_mm256_sub_epi32(_mm256_or_si256(lo4, _mm256_slli_epi32(hi2, 4)), _mm256_set1_epi32(32)));
          }
          __m256i w[8], aw[8];  // elements 4i .. (i < 4) and 16 + 4(i - 4) .. of the sub-block
          for (int i = 0; i < 4; ++i) {
            const __m256i q = load32(pb + kQs + 32 * (4 * j + i)), lo = nibbles_lo(q), hi = nibbles_hi(q);
            w[i] = _mm256_shuffle_epi8(tw, lo), aw[i] = _mm256_shuffle_epi8(ta, lo);
            w[i + 4] = _mm256_shuffle_epi8(tw, hi), aw[i + 4] = _mm256_shuffle_epi8(ta, hi);
          }
          for (int t = 0; t < NT; ++t) {
            const uint8_t* x = xb + size_t(t) * a.row_bytes + 32 * j;
            for (int i = 0; i < 8; ++i)
              S[t] = P::add32(S[t], _mm256_madd_epi16(P::mb(aw[i], _mm256_sign_epi8(P::bcast(x + 4 * i), w[i])), sc16));
          }
        }
        for (int t = 0; t < NT; ++t) {
          const size_t bt = size_t(t0 + t) * a.nb + b;
          fa[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[t]), _mm256_mul_ps(d, _mm256_set1_ps(a.dx[bt])), fa[t]);
        }
      } else if constexpr (DT == DType::Q3_K || DT == DType::Q2_K) {
        // Q3_K: d[8] | scales: 3 units | hmask: 8 units | qs: 16 units. Q2_K: d[8] | dmin[8] |
        // scales: 4 units | qs: 16 units. In half n, element 128n + 32q + l is bits 2q, 2q+1 of qs
        // byte 32n + l (Q3_K: plus 4 if bit 4n + q of hmask byte l is set, qlayout.h's u, minus
        // C = 4 through the bias); sub-block j = 8n + 2q + l / 16. Q3_K's scales: 6 bits minus
        // 32, the low 4 of sub-block j in byte j % 8 (high nibble from j = 8), the high 2 in byte
        // 8 + j % 4, bits 2 (j / 4); Q2_K's: byte j, scale | min << 4. Values 0..7: four
        // products' pairs stay below 4 * 2 * 7 * 127 before each vpmaddwd by sc_j.
        constexpr bool k3 = DT == DType::Q3_K;
        const __m256 d = P::halves(pb);
        const uint8_t* hm = pb + 112;  // Q3_K
        const uint8_t* qs = pb + (k3 ? 368 : 160);
        const __m256i m4 = _mm256_set1_epi32(15);
        __m256i sw[4], m[16];  // scale units; Q2_K's mins
        for (int k = 0; k < (k3 ? 3 : 4); ++k) sw[k] = load32(pb + (k3 ? 16 : 32) + 32 * k);
        __m256i S[NT];
        for (int t = 0; t < NT; ++t) S[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int n = 0; n < 2; ++n)
#pragma GCC unroll 4
          for (int h = 0; h < 2; ++h) {
            __m256i lq[4], hq[4];  // the 4 units of this half of the sub-blocks, for every q
            for (int i = 0; i < 4; ++i) {
              lq[i] = load32(qs + 32 * (8 * n + 4 * h + i));
              if constexpr (k3) hq[i] = _mm256_srli_epi16(load32(hm + 32 * (4 * h + i)), 4 * n);
            }
#pragma GCC unroll 4
            for (int q = 0; q < 4; ++q) {
              const int j = 8 * n + 2 * q + h, jl = j % 8;
              __m256i sc;
              if constexpr (k3) {
                const __m256i lo4 = _mm256_and_si256(_mm256_srli_epi32(sw[jl / 4], 8 * (jl % 4) + 4 * (j / 8)), m4);
                const __m256i hi2 = _mm256_and_si256(_mm256_srli_epi32(sw[2], 8 * (j % 4) + 2 * (j / 4)), _mm256_set1_epi32(3));
                sc = _mm256_sub_epi32(_mm256_or_si256(lo4, _mm256_slli_epi32(hi2, 4)), _mm256_set1_epi32(32));
              } else {
                sc = _mm256_and_si256(_mm256_srli_epi32(sw[j / 4], 8 * (j % 4)), m4);
                m[j] = _mm256_and_si256(_mm256_srli_epi32(sw[j / 4], 8 * (j % 4) + 4), m4);
              }
              const __m256i sc16 = P::pair16(sc);
              __m256i u[4];
              for (int i = 0; i < 4; ++i) {
                u[i] = bits(lq[i], 2 * q, 3, 0);
                if constexpr (k3) u[i] = _mm256_or_si256(u[i], bits(hq[i], q, 1, 2));  // hq: bits 4n.. moved down
              }
              for (int t = 0; t < NT; ++t) {
                const uint8_t* x = xb + size_t(t) * a.row_bytes + 128 * n + 32 * q + 16 * h;
                __m256i s = P::add16(P::add16(P::mb(u[0], P::bcast(x)), P::mb(u[1], P::bcast(x + 4))),
                                     P::add16(P::mb(u[2], P::bcast(x + 8)), P::mb(u[3], P::bcast(x + 12))));
                if constexpr (k3) {  // the bias (-4 xsum_j, |.| <= 8128) joins the low pair sum: below 15240
                  const size_t bt = size_t(t0 + t) * a.nb + b;
                  s = P::add16(s, _mm256_set1_epi32(int32_t(uint16_t(a.bias[bt * 16 + j]))));
                }
                S[t] = P::add32(S[t], _mm256_madd_epi16(s, sc16));
              }
            }
          }
        for (int t = 0; t < NT; ++t) {
          const size_t bt = size_t(t0 + t) * a.nb + b;
          const __m256 dx = _mm256_set1_ps(a.dx[bt]);
          fa[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[t]), _mm256_mul_ps(d, dx), fa[t]);
          if constexpr (!k3) {
            __m256i M = _mm256_setzero_si256();
            for (int j = 0; j < 8; ++j)
              M = P::add32(M, _mm256_madd_epi16(_mm256_or_si256(m[2 * j], _mm256_slli_epi32(m[2 * j + 1], 16)), _mm256_set1_epi32(a.pairs[bt * 8 + j])));
            fa[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(M), _mm256_mul_ps(P::halves(pb + 16), dx), fa[t]);
          }
        }
      } else if constexpr (DT == DType::Q6_K) {
        // d[8] | scales[16][8] int8 | ql: 32 units | qh: 16 units. In half n, element
        // 128n + 32q + l: the low (q < 2) or high nibble of ql byte 64n + 32(q & 1) + l, bits
        // 2q, 2q+1 of qh byte 32n + l; sub-block j = 8n + 2q + l / 16. Values 0..63: two
        // products' pairs stay below 2 * 2 * 63 * 127 = 32004 before each vpmaddwd by sc_j.
        const __m256 d = P::halves(pb);
        const uint8_t* ql = pb + 144;
        const uint8_t* qh = pb + 1168;
        __m256i S[NT];
        for (int t = 0; t < NT; ++t) S[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int n = 0; n < 2; ++n)
#pragma GCC unroll 4
          for (int q = 0; q < 4; ++q)
#pragma GCC unroll 4
            for (int h = 0; h < 2; ++h) {
              const int j = 8 * n + 2 * q + h;
              const __m256i sc = P::i8(pb + 16 + 8 * j), sc16 = P::pair16(sc);
              __m256i u[4];
              for (int i = 0; i < 4; ++i) {
                const int l4 = 4 * h + i;  // unit of 4 bytes: l = 4 * l4 .. + 3
                const __m256i lq = load32(ql + 32 * (16 * n + 8 * (q & 1) + l4)), hq = load32(qh + 32 * (8 * n + l4));
                u[i] = _mm256_or_si256(q < 2 ? nibbles_lo(lq) : nibbles_hi(lq), bits(hq, 2 * q, 3, 4));  // qh bits 2q, 2q+1 -> 4, 5
              }
              for (int t = 0; t < NT; ++t) {
                const uint8_t* x = xb + size_t(t) * a.row_bytes + 128 * n + 32 * q + 16 * h;
                const __m256i s01 = P::add16(P::mb(u[0], P::bcast(x)), P::mb(u[1], P::bcast(x + 4)));
                const __m256i s23 = P::add16(P::mb(u[2], P::bcast(x + 8)), P::mb(u[3], P::bcast(x + 12)));
                const size_t bt = size_t(t0 + t) * a.nb + b;
                const __m256i bias = _mm256_mullo_epi32(sc, _mm256_set1_epi32(a.bias[bt * 16 + j]));
                S[t] = P::add32(S[t], P::add32(P::add32(_mm256_madd_epi16(s01, sc16), _mm256_madd_epi16(s23, sc16)), bias));
              }
            }
        for (int t = 0; t < NT; ++t) {
          const size_t bt = size_t(t0 + t) * a.nb + b;
          fa[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[t]), _mm256_mul_ps(d, _mm256_set1_ps(a.dx[bt])), fa[t]);
        }
      } else {
        static_assert(DT == DType::Q4_K || DT == DType::Q5_K, "a type without a panel kernel");
        // d[8] | dmin[8] | scales: 12 bytes x 8 rows | (Q5_K: qh, 8 units) | qs: 32 units. Unit
        // 8i + k holds qs bytes 32i + 4k ..: low nibbles are elements 64i + 4k .. (sub-block 2i),
        // high ones 64i + 32 + 4k .. (2i + 1); Q5_K's fifth bits are bits 2i, 2i + 1 of qh unit k.
        // Pairs of 15 * 127 (Q4_K: 8 units summed, |sum| <= 30480) or 31 * 127 (Q5_K: 4 units,
        // |sum| <= 31496) in 16 bits, then one vpmaddwd by the sub-block scale.
        constexpr bool k5 = DT == DType::Q5_K;
        constexpr int kQs = k5 ? 384 : 128, kRun = k5 ? 4 : 8;  // qs offset; units per 16-bit run
        const __m256 d = P::halves(pb), dmin = P::halves(pb + 16);
        __m256i sb[12], sc[8], m[8];
        for (int i = 0; i < 12; ++i) sb[i] = P::u8(pb + 32 + 8 * i);
        const __m256i m6 = _mm256_set1_epi32(63), m4 = _mm256_set1_epi32(15);
        for (int j = 0; j < 4; ++j) {  // ggml's 6-bit packing (qlayout.h's scale_min_k4)
          sc[j] = _mm256_and_si256(sb[j], m6), m[j] = _mm256_and_si256(sb[j + 4], m6);
          sc[j + 4] = _mm256_or_si256(_mm256_and_si256(sb[j + 8], m4), _mm256_slli_epi32(_mm256_srli_epi32(sb[j], 6), 4));
          m[j + 4] = _mm256_or_si256(_mm256_srli_epi32(sb[j + 8], 4), _mm256_slli_epi32(_mm256_srli_epi32(sb[j + 4], 6), 4));
        }
        __m256i S[NT];
        for (int t = 0; t < NT; ++t) S[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) {
          const __m256i s0 = P::pair16(sc[2 * i]), s1 = P::pair16(sc[2 * i + 1]);
          for (int k0 = 0; k0 < 8; k0 += kRun) {
            __m256i slo[NT], shi[NT];
            for (int t = 0; t < NT; ++t) slo[t] = shi[t] = _mm256_setzero_si256();
            for (int k = k0; k < k0 + kRun; ++k) {
              const __m256i q = load32(pb + kQs + 32 * (8 * i + k));
              __m256i lo = nibbles_lo(q), hi = nibbles_hi(q);
              if constexpr (k5) {
                const __m256i h = load32(pb + 128 + 32 * k);
                lo = _mm256_or_si256(lo, bits(h, 2 * i, 1, 4)), hi = _mm256_or_si256(hi, bits(h, 2 * i + 1, 1, 4));
              }
              for (int t = 0; t < NT; ++t) {
                const uint8_t* x = xb + size_t(t) * a.row_bytes + 64 * i + 4 * k;
                slo[t] = P::add16(slo[t], P::mb(lo, P::bcast(x))), shi[t] = P::add16(shi[t], P::mb(hi, P::bcast(x + 32)));
              }
            }
            for (int t = 0; t < NT; ++t) S[t] = P::add32(S[t], P::add32(_mm256_madd_epi16(slo[t], s0), _mm256_madd_epi16(shi[t], s1)));
          }
        }
        for (int t = 0; t < NT; ++t) {
          const size_t bt = size_t(t0 + t) * a.nb + b;
          __m256i M = _mm256_setzero_si256();
          for (int j = 0; j < 4; ++j)
            M = P::add32(M, _mm256_madd_epi16(_mm256_or_si256(m[2 * j], _mm256_slli_epi32(m[2 * j + 1], 16)), _mm256_set1_epi32(a.pairs[bt * 4 + j])));
          const __m256 dx = _mm256_set1_ps(a.dx[bt]);
          fa[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[t]), _mm256_mul_ps(d, dx), fa[t]);
          fa[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(M), _mm256_mul_ps(dmin, dx), fa[t]);
        }
      }
    }
    for (int t = 0; t < NT; ++t) _mm256_storeu_ps(Y + size_t(t) * ldy, fa[t]);
  }

  // Activation rows per pass over a panel: more rows reread the panel (from L1, or L2 for long
  // rows) fewer times, as long as their accumulators stay in registers. Measured on Zen 3
  // (`camelid bench -p 128 -t 1`, bench-450m, 4 / 6 / 8 rows): the 32-element block types gain
  // 5-19% at 8 rows (IQ4_XS's one-scale sub-blocks too); Q8_0 +4% at 6 and less at 8; the
  // K-quants lose 2-20% beyond 4 (Q6_K 125 -> 103 tok/s at 8).
  static constexpr int kNT = DT == DType::Q8_0 ? 6
                             : DT == DType::Q4_0 || DT == DType::Q4_1 || DT == DType::Q5_0 || DT == DType::Q5_1 ||
                                       DT == DType::IQ4_NL || DT == DType::IQ4_XS
                                 ? 8
                                 : 4;
  // The last T % kNT rows.
  template <int N>
  static void tail(const QuantizedActivations& a, int t, const uint8_t* pan, float* Y, size_t ldy) {
    if constexpr (N > 0) {
      if (a.T - t == N) return panel_rows<N>(a, t, pan, Y, ldy);
      tail<N - 1>(a, t, pan, Y, ldy);
    }
  }

  // Rows [o0, o1) for every activation row, kNT at a time: each panel is read from memory once
  // and again from L1 for the next kNT rows (a panel is 8 rows' bytes: 18 KB for 4096 Q4_0
  // columns), so batches cost what decode costs per kNT rows.
  static void rows(const QuantizedActivations& a, const Tensor& W, float* Y, int o0, int o1) {
    const size_t panel_bytes = size_t(kRows) * W.row_nbytes(), ldy = size_t(W.rows);
    const uint8_t* base = static_cast<const uint8_t*>(W.data);
    for (int o = o0; o < o1; o += kRows) {
      const uint8_t* pan = base + size_t(o / kRows) * panel_bytes;
      int t = 0;
      for (; t + kNT <= a.T; t += kNT) panel_rows<kNT>(a, t, pan, Y + size_t(t) * ldy + o, ldy);
      tail<kNT - 1>(a, t, pan, Y + size_t(t) * ldy + o, ldy);
    }
  }
};

// Rows [o0, o1) (whole panels) of Y.
inline void qgemv_panel256(const QuantizedActivations& a, const Tensor& W, float* Y, int o0, int o1) {
  // Every type with an integer kernel has a panel layout (qpanel.h) and a branch above.
  if (!q::with_layout(W.dtype, [&]<DType DT>() { QPanelGemv<DT>::rows(a, W, Y, o0, o1); }))
    fail("qgemv_panel: no panel kernel for ", dtype_name(W.dtype));
}

}  // namespace
}  // namespace camelid::kernels::qsimd
