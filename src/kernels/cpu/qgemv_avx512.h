#pragma once
// Decode (one activation row) for the hot weight types with AVX-512: the weights stream from
// memory once, so they are not packed (packing costs more than the dot products at T = 1).
// Each row's bytes are multiplied where they lie, 128 elements per step, into one int32 vector
// per row whose 128-bit lanes each hold one (sub-)block's partial sums; the activations are
// permuted once per call to match. A transposing reduction then turns 16 rows' vectors into
// one vector per (sub-)block with a row per lane, and from there the integer and float steps are
// those of the packed kernel (qmatmul.h), so decode and prefill give the same bits.
// Included by the AVX-512 files only. TU-local (see qlayout.h).
#include <algorithm>
#include <vector>
#include <immintrin.h>

#include "kernels/cpu/qgemm_simd.h"

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

// A step covers 128 elements of a row (4 blocks of 32, or half a super-block) in NV vectors of
// bytes going into NC accumulators; acc[i]: the accumulator of vector i, sub[c][l]: the
// (sub-)block, within the step, of 128-bit lane l of accumulator c; x(): the activations of
// the step (in element order) permuted like the weights.
template <DType DT>
struct Step;

// Q4_0 / Q8_0: lane l of both vectors is block l: first the elements 0..15, then 16..31.
inline void x_blocks4(const int8_t* x, __m512i xv[2]) {
  xv[0] = load4x16(reinterpret_cast<const uint8_t*>(x), 32);
  xv[1] = load4x16(reinterpret_cast<const uint8_t*>(x + 16), 32);
}

template <>
struct Step<DType::Q4_0> {
  static constexpr int NV = 2, NC = 1, kBlocks = 4;
  static constexpr int acc[NV] = {0, 0}, sub[NC][4] = {{0, 1, 2, 3}};
  static void x(const int8_t* x, __m512i xv[NV]) { x_blocks4(x, xv); }
  static void w(const uint8_t* blk, __m512i wv[NV]) {
    const __m512i q = load4x16(blk + 2, 18);
    wv[0] = nib_lo(q), wv[1] = nib_hi(q);
  }
};

template <>
struct Step<DType::Q8_0> {
  static constexpr int NV = 2, NC = 1, kBlocks = 4;
  static constexpr int acc[NV] = {0, 0}, sub[NC][4] = {{0, 1, 2, 3}};
  static void x(const int8_t* x, __m512i xv[NV]) { x_blocks4(x, xv); }
  static void w(const uint8_t* blk, __m512i wv[NV]) {
    const __m512i f = _mm512_set1_epi8(char(0x80));
    auto two = [&](const uint8_t* p) {  // two blocks' 32 bytes, + 128
      const __m512i v = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
      return _mm512_xor_si512(_mm512_inserti64x4(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 34)), 1), f);
    };
    const __m512i a = two(blk + 2), b = two(blk + 70);  // lanes: b0 lo, b0 hi, b1 lo, b1 hi
    wv[0] = _mm512_shuffle_i32x4(a, b, 0x88), wv[1] = _mm512_shuffle_i32x4(a, b, 0xdd);
  }
};

// Q4_K, half h of a super-block (sub-blocks 4h..4h+3 of 32): 64 bytes of nibbles hold them as
// low (4h, 4h+2) and high (4h+1, 4h+3) halves; lanes are regrouped to one sub-block each.
template <>
struct Step<DType::Q4_K> {
  static constexpr int NV = 2, NC = 1, kBlocks = 0;
  static constexpr int acc[NV] = {0, 0}, sub[NC][4] = {{0, 2, 1, 3}};
  static void x(const int8_t* x, __m512i xv[NV]) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(x);
    xv[0] = load4(p, p + 64, p + 32, p + 96), xv[1] = load4(p + 16, p + 80, p + 48, p + 112);
  }
  static void w(const uint8_t* qs, __m512i wv[NV]) {  // qs: the 64 bytes of this half
    const __m512i q = _mm512_loadu_si512(qs), lo = nib_lo(q), hi = nib_hi(q);
    // lo lanes: sb0 (0..15), sb0 (16..31), sb2, sb2; hi: sb1, sb1, sb3, sb3.
    wv[0] = _mm512_shuffle_i32x4(lo, hi, 0x88), wv[1] = _mm512_shuffle_i32x4(lo, hi, 0xdd);
  }
};

// Q6_K, half n of a super-block: elements in order, lane l of vector v = sub-block 4v + l (16 each).
template <>
struct Step<DType::Q6_K> {
  static constexpr int NV = 2, NC = 2, kBlocks = 0;
  static constexpr int acc[NV] = {0, 1}, sub[NC][4] = {{0, 1, 2, 3}, {4, 5, 6, 7}};
  static void x(const int8_t* x, __m512i xv[NV]) {
    xv[0] = _mm512_loadu_si512(x), xv[1] = _mm512_loadu_si512(x + 64);
  }
  static void w(const uint8_t* b, int n, __m512i wv[NV]) {
    const __m512i ql = _mm512_loadu_si512(b + 64 * n);  // elements 0..31 / 32..63 low nibbles; high: 64..127
    const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * n)));
    const __m512i h01 = _mm512_mask_blend_epi64(0xf0, h, _mm512_srli_epi16(h, 2));  // bits 0-1 | bits 2-3
    const __m512i h23 = _mm512_srli_epi16(h01, 4);                                   // bits 4-5 | bits 6-7
    const __m512i m = _mm512_set1_epi8(0x30);
    wv[0] = _mm512_or_si512(nib_lo(ql), _mm512_and_si512(_mm512_slli_epi16(h01, 4), m));
    wv[1] = _mm512_or_si512(nib_hi(ql), _mm512_and_si512(_mm512_slli_epi16(h23, 4), m));
  }
};

// Lane l (128 bits) of 4 rows' accumulators summed: lane l of the result holds rows 0..3.
inline __m512i reduce4(const __m512i* a) {
  const __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(a[0], a[1]), _mm512_unpackhi_epi32(a[0], a[1]));
  const __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(a[2], a[3]), _mm512_unpackhi_epi32(a[2], a[3]));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
}
// Four reduce4 results (rows 0..3, 4..7, ...) -> out[l]: lane r = row r's sum of lane l (a 4 x 4
// transposition of 128-bit lanes).
inline void transpose_lanes(const __m512i* u, __m512i out[4]) {
  const __m512i p0 = _mm512_shuffle_i32x4(u[0], u[1], 0x44), p1 = _mm512_shuffle_i32x4(u[0], u[1], 0xee);
  const __m512i q0 = _mm512_shuffle_i32x4(u[2], u[3], 0x44), q1 = _mm512_shuffle_i32x4(u[2], u[3], 0xee);
  out[0] = _mm512_shuffle_i32x4(p0, q0, 0x88), out[1] = _mm512_shuffle_i32x4(p0, q0, 0xdd);
  out[2] = _mm512_shuffle_i32x4(p1, q1, 0x88), out[3] = _mm512_shuffle_i32x4(p1, q1, 0xdd);
}

template <class V, DType DT>
struct QGemv {
  using L = q::Layout<DT>;
  using S = Step<DT>;
  using G = QGemm<V, DT>;
  static constexpr bool kSigned = G::kSigned;
  static constexpr int kSteps = L::QB == 256 ? 2 : 1;       // steps per weight block (group)
  static constexpr int kGroup = L::QB == 256 ? 256 : 128;   // elements per epilogue
  static constexpr int kSubs = kGroup / (L::QB == 256 ? L::S : 32);  // sums per group

  // The activations of one row, permuted step by step (kGroup-element groups).
  static void permute_x(const QuantizedActivations& a, std::vector<int8_t>& xp) {
    const int K = a.K;
    xp.resize(size_t(K) + 64);
    alignas(64) int8_t nat[256];
    for (int k = 0; k < K; k += 128) {
      for (int e = 0; e < 128; e += (L::QB == 256 ? 256 : 32)) {  // gather 128 elements in order
        const int blk = (k + e) / (L::QB == 256 ? 256 : 32);
        const int within = L::QB == 256 ? k % 256 : 0;
        std::memcpy(nat + e, a.q + size_t(blk) * G::XB + G::XO + within, L::QB == 256 ? 128 : 32);
      }
      __m512i xv[S::NV];
      S::x(nat, xv);
      for (int i = 0; i < S::NV; ++i) _mm512_storeu_si512(xp.data() + k + 64 * i, xv[i]);
    }
  }

  static void load_w(const uint8_t* row, int k, __m512i wv[S::NV]) {
    if constexpr (DT == DType::Q4_0 || DT == DType::Q8_0) S::w(row + size_t(k / 32) * L::BB, wv);
    else if constexpr (DT == DType::Q4_K) S::w(row + size_t(k / 256) * L::BB + 16 + 64 * ((k % 256) / 128), wv);
    else S::w(row + size_t(k / 256) * L::BB, (k % 256) / 128, wv);
  }

  // Rows og .. og+nrows-1 (nrows <= 16) of Y for the single activation row.
  static void panel(const QuantizedActivations& a, const int8_t* xp, const Tensor& W, float* Y, int og, int nrows) {
    const uint8_t* rows[16];
    for (int r = 0; r < 16; ++r) rows[r] = W.row(og + std::min(r, nrows - 1));
    const __m512i offs = V::row_offsets(0, nrows - 1, W.row_nbytes());
    __m512 fa = _mm512_setzero_ps();
    __m512i sums[16];  // per (sub-)block of the group: 16 rows
    const int K = a.K;
    const size_t panel_bytes = 16 * W.row_nbytes(), pf_step = (panel_bytes / (K / 128) + 63) / 64 * 64;
    const uint8_t* pf_next = W.row(og) + panel_bytes;
    for (int k0 = 0; k0 < K; k0 += kGroup) {
      for (int s = 0; s < kSteps; ++s) {
        const int k = k0 + 128 * s;
        __m512i xv[S::NV];
        for (int i = 0; i < S::NV; ++i) xv[i] = _mm512_loadu_si512(xp + k + 64 * i);
        // The next panel's rows (contiguous after this one's) stream into L2 at the rate this
        // panel is consumed, a whole panel ahead of use: DRAM latency stays hidden and the
        // hardware prefetchers need not discover 16 short streams per panel.
        for (size_t pb = 0; pb < pf_step; pb += 64) _mm_prefetch(reinterpret_cast<const char*>(pf_next + pb), _MM_HINT_T1);
        pf_next += pf_step;
        __m512i u[S::NC][4];  // rows in quads: 4 accumulators each, reduced at once
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          __m512i acc[S::NC][4];
#pragma GCC unroll 4
          for (int r = 0; r < 4; ++r) {
            const uint8_t* row = rows[4 * q + r];
            __m512i wv[S::NV];
            load_w(row, k, wv);
#pragma GCC unroll 2
            for (int c = 0; c < S::NC; ++c) acc[c][r] = _mm512_setzero_si512();
#pragma GCC unroll 2
            for (int i = 0; i < S::NV; ++i)
              acc[S::acc[i]][r] = V::template dot<kSigned>(acc[S::acc[i]][r], V::template from_u<kSigned>(wv[i]), xv[i]);
          }
#pragma GCC unroll 2
          for (int c = 0; c < S::NC; ++c) u[c][q] = reduce4(acc[c]);
        }
        for (int c = 0; c < S::NC; ++c) {
          __m512i part[4];
          transpose_lanes(u[c], part);
          for (int l = 0; l < 4; ++l) sums[S::sub[c][l] + (kSteps == 2 ? s * (kSubs / 2) : 0)] = part[l];
        }
      }
      epilogue(a, k0, W, offs, rows[0], sums, fa);
    }
    _mm512_mask_storeu_ps(Y + og, __mmask16((1u << nrows) - 1), fa);
  }

  // The integer and float steps of qmatmul.h for the blocks of one group, 16 rows at once.
  static void epilogue(const QuantizedActivations& a, int k0, const Tensor& W, __m512i offs, const uint8_t* row0,
                       __m512i* sums, __m512& fa) {
    if constexpr (L::QB == 32) {
      for (int j = 0; j < 4 && k0 + 32 * j < a.K; ++j) {
        const int b = k0 / 32 + j;
        BlockScalesV<V> sc;
        scales_simd<V, DT>(row0 + size_t(b) * L::BB, offs, sc);
        __m512i S = sums[j];
        if constexpr (G::kBias) S = _mm512_add_epi32(S, _mm512_set1_epi32(a.bias[b]));
        fa = V::fmadd(V::fcvt(S), V::fmul(sc.d, V::fset1(a.dx[b])), fa);
      }
    } else {
      const int b = k0 / 256;
      BlockScalesV<V> sc;
      scales_simd<V, DT>(row0 + size_t(b) * L::BB, offs, sc);
      __m512i S = _mm512_setzero_si512();
      for (int j = 0; j < L::NS; ++j) {
        __m512i sub = sums[j];
        if constexpr (G::kBias) sub = _mm512_add_epi32(sub, _mm512_set1_epi32(a.bias[size_t(b) * L::NS + j]));
        S = _mm512_add_epi32(S, _mm512_mullo_epi32(sub, sc.sc[j]));
      }
      const __m512 dx = V::fset1(a.dx[b]);
      fa = V::fmadd(V::fcvt(S), V::fmul(sc.d, dx), fa);
      if constexpr (L::kind == q::Kind::SuperMin) {
        __m512i M = _mm512_setzero_si512();
        for (int j = 0; j < L::NS / 2; ++j) {
          const int32_t pr = a.pairs[size_t(b) * L::NS / 2 + j];
          M = _mm512_add_epi32(M, _mm512_mullo_epi32(sc.m[2 * j], _mm512_set1_epi32(int16_t(pr & 0xffff))));
          M = _mm512_add_epi32(M, _mm512_mullo_epi32(sc.m[2 * j + 1], _mm512_set1_epi32(int16_t(uint32_t(pr) >> 16))));
        }
        fa = V::fnmadd(V::fcvt(M), V::fmul(sc.dmin, dx), fa);
      }
    }
  }

  static void rows(const QuantizedActivations& a, const Tensor& W, float* Y, int o0, int o1) {
    if (a.K % 128) return G::rows(a, W, Y, o0, o1);  // whole steps only; same results either way
    // Permuted once per call and thread (rows come in many blocks per call).
    static thread_local std::vector<int8_t> xp;
    static thread_local uint64_t xp_id = 0;
    if (xp_id != a.id) permute_x(a, xp), xp_id = a.id;
    // The first panel has no predecessor to fetch it: ask for all of it now.
    const size_t first = size_t(std::min(16, o1 - o0)) * W.row_nbytes();
    for (size_t pb = 0; pb < first; pb += 64) _mm_prefetch(reinterpret_cast<const char*>(W.row(o0) + pb), _MM_HINT_T0);
    for (int og = o0; og < o1; og += 16) panel(a, xp.data(), W, Y, og, std::min(16, o1 - og));
  }
};

// Decode through QGemv where a step layout exists, else the packed kernel.
template <class V>
void qmatmul_rows_decode(const QuantizedActivations& a, const Tensor& W, float* Y, int o0, int o1) {
  if (a.T == 1) {
    switch (W.dtype) {
      case DType::Q4_0: return QGemv<V, DType::Q4_0>::rows(a, W, Y, o0, o1);
      case DType::Q8_0: return QGemv<V, DType::Q8_0>::rows(a, W, Y, o0, o1);
      case DType::Q4_K: return QGemv<V, DType::Q4_K>::rows(a, W, Y, o0, o1);
      case DType::Q6_K: return QGemv<V, DType::Q6_K>::rows(a, W, Y, o0, o1);
      default: break;
    }
  }
  qmatmul_rows<V>(a, W, Y, o0, o1);
}

}  // namespace
}  // namespace camelid::kernels::qsimd
