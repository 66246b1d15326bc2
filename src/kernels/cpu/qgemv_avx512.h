#pragma once
// Decode (one to four activation rows) with AVX-512: the weights stream from
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
#include "kernels/cpu/qgemv_steps_avx512.h"

namespace camelid::kernels::qsimd {
namespace {

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

  // W.row_nbytes() without its table lookup and division (once per panel adds up).
  static size_t row_stride(const Tensor& W) { return size_t(W.cols / L::QB) * L::BB; }

  // The activations, permuted step by step: row t at xp + t * ld.
  static size_t permute_x(const QuantizedActivations& a, std::vector<int8_t>& xp) {
    const size_t ld = size_t(a.K) + 64;
    xp.resize(ld * a.T);
    alignas(64) int8_t nat[128];
    for (int t = 0; t < a.T; ++t)
      for (int k = 0; k < a.K; k += 128) {
        const uint8_t* xr = a.q + size_t(t) * a.row_bytes;
        for (int e = 0; e < 128; e += (L::QB == 256 ? 256 : 32)) {  // gather 128 elements in order
          const int blk = (k + e) / (L::QB == 256 ? 256 : 32);
          const int within = L::QB == 256 ? k % 256 : 0;
          std::memcpy(nat + e, xr + size_t(blk) * G::XB + G::XO + within, L::QB == 256 ? 128 : 32);
        }
        __m512i xv[S::NV];
        S::x(nat, xv);
        for (int i = 0; i < S::NV; ++i) _mm512_storeu_si512(xp.data() + t * ld + k + 64 * i, xv[i]);
      }
    return ld;
  }

  // Rows og .. og+nrows-1 (nrows <= 16) of Y for the NT activation rows.
  template <int NT>
  static void panel(const QuantizedActivations& a, const int8_t* xp, size_t xld, const Tensor& W, float* Y, int og, int nrows) {
    const uint8_t* rows[16];
    const size_t rb = row_stride(W);
    const uint8_t* w0 = static_cast<const uint8_t*>(W.data);
    for (int r = 0; r < 16; ++r) rows[r] = w0 + size_t(og + std::min(r, nrows - 1)) * rb;
    const __m512i offs = V::row_offsets(0, nrows - 1, rb);
    __m512 fa[NT];
    for (int t = 0; t < NT; ++t) fa[t] = _mm512_setzero_ps();
    __m512i sums[NT][16];  // per activation row and (sub-)block of the group: 16 rows
    const int K = a.K;
    const size_t panel_bytes = 16 * rb, pf_step = (panel_bytes / (K / 128) + 63) / 64 * 64;
    const uint8_t* pf_next = rows[0] + panel_bytes;
    __m512 hd[4];  // kHdr: the group's block scales d, from the weights already loaded
    for (int k0 = 0; k0 < K; k0 += kGroup) {
      for (int s = 0; s < kSteps; ++s) {
        const int k = k0 + 128 * s;
        // The next panel's rows (contiguous after this one's) stream into L2 at the rate this
        // panel is consumed, a whole panel ahead of use: DRAM latency stays hidden and the
        // hardware prefetchers need not discover 16 short streams per panel.
        for (size_t pb = 0; pb < pf_step; pb += 64) _mm_prefetch(reinterpret_cast<const char*>(pf_next + pb), _MM_HINT_T1);
        pf_next += pf_step;
        __m512i u[NT][S::NC][4];  // rows in quads: 4 accumulators each, reduced at once
        __m512i hq[4];            // kHdr: the quads' block headers, [block][row]
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          __m512i wv[4][S::NV];
          if constexpr (S::kHdr) {
            __m512i h[4];
#pragma GCC unroll 4
            for (int r = 0; r < 4; ++r) S::w(rows[4 * q + r], k, wv[r], h[r]);
            hq[q] = Headers::merge<2>(Headers::pair(h[0], h[1]), Headers::pair(h[2], h[3]));
          } else {
#pragma GCC unroll 4
            for (int r = 0; r < 4; ++r) S::w(rows[4 * q + r], k, wv[r]);
          }
#pragma GCC unroll 4
          for (int t = 0; t < NT; ++t) {
            __m512i xv[S::NV];
#pragma GCC unroll 2
            for (int i = 0; i < S::NV; ++i) xv[i] = _mm512_loadu_si512(xp + t * xld + k + 64 * i);
            __m512i acc[S::NC][4];
#pragma GCC unroll 4
            for (int r = 0; r < 4; ++r) {
#pragma GCC unroll 2
              for (int c = 0; c < S::NC; ++c) acc[c][r] = _mm512_setzero_si512();
#pragma GCC unroll 2
              for (int i = 0; i < S::NV; ++i)
                acc[S::acc[i]][r] = V::template dot<kSigned>(acc[S::acc[i]][r], V::template from_u<kSigned>(wv[r][i]), xv[i]);
            }
#pragma GCC unroll 2
            for (int c = 0; c < S::NC; ++c) u[t][c][q] = reduce4(acc[c]);
          }
        }
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t)
#pragma GCC unroll 2
          for (int c = 0; c < S::NC; ++c) {
            __m512i part[4];
            transpose_lanes(u[t][c], part);
            for (int l = 0; l < 4; ++l) sums[t][S::sub[c][l] + (kSteps == 2 ? s * (kSubs / 2) : 0)] = part[l];
          }
        if constexpr (S::kHdr) {
          const __m512i h01 = Headers::merge<4>(hq[0], hq[1]), h23 = Headers::merge<4>(hq[2], hq[3]);
          const __m512i d01 = Headers::last<0>(h01, h23), d23 = Headers::last<1>(h01, h23);
          hd[0] = _mm512_cvtph_ps(_mm512_castsi512_si256(d01)), hd[1] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(d01, 1));
          hd[2] = _mm512_cvtph_ps(_mm512_castsi512_si256(d23)), hd[3] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(d23, 1));
        }
      }
      epilogue<NT>(a, k0, offs, rows[0], sums, fa, hd);
    }
    for (int t = 0; t < NT; ++t) _mm512_mask_storeu_ps(Y + size_t(t) * W.rows + og, __mmask16((1u << nrows) - 1), fa[t]);
  }

  // The integer and float steps of qmatmul.h for the blocks of one group, 16 rows at once; the
  // scales are gathered once for all activation rows.
  template <int NT>
  static void epilogue(const QuantizedActivations& a, int k0, __m512i offs, const uint8_t* row0, __m512i (*sums)[16], __m512* fa,
                       const __m512* hd) {
    const int nb = a.nb;
    if constexpr (L::QB == 32) {
      for (int j = 0; j < 4; ++j) {
        const int b = k0 / 32 + j;
        BlockScalesV<V> sc;
        if constexpr (S::kHdr) sc.d = hd[j];
        else scales_simd<V, DT>(row0 + size_t(b) * L::BB, offs, sc);
        for (int t = 0; t < NT; ++t) {
          const size_t bt = size_t(t) * nb + b;
          __m512i S = sums[t][j];
          if constexpr (G::kBias) S = _mm512_add_epi32(S, _mm512_set1_epi32(a.bias[bt]));
          fa[t] = V::fmadd(V::fcvt(S), V::fmul(sc.d, V::fset1(a.dx[bt])), fa[t]);
          if constexpr (L::kind == q::Kind::Block32Min) fa[t] = V::fmadd(sc.dmin, V::fset1(a.sx[bt]), fa[t]);
        }
      }
    } else {
      const int b = k0 / 256;
      BlockScalesV<V> sc;
      scales_simd<V, DT>(row0 + size_t(b) * L::BB, offs, sc);
      for (int t = 0; t < NT; ++t) {
        const size_t bt = size_t(t) * nb + b;
        __m512i S = _mm512_setzero_si512();
        for (int j = 0; j < L::NS; ++j) {
          __m512i sub = sums[t][j];
          if constexpr (G::kBias) sub = _mm512_add_epi32(sub, _mm512_set1_epi32(a.bias[bt * L::NS + j]));
          S = _mm512_add_epi32(S, _mm512_mullo_epi32(sub, sc.sc[j]));
        }
        const __m512 dx = V::fset1(a.dx[bt]);
        fa[t] = V::fmadd(V::fcvt(S), V::fmul(sc.d, dx), fa[t]);
        if constexpr (L::kind == q::Kind::SuperMin) {
          __m512i M = _mm512_setzero_si512();
          for (int j = 0; j < L::NS / 2; ++j) {
            const int32_t pr = a.pairs[bt * L::NS / 2 + j];
            M = _mm512_add_epi32(M, _mm512_mullo_epi32(sc.m[2 * j], _mm512_set1_epi32(int16_t(pr & 0xffff))));
            M = _mm512_add_epi32(M, _mm512_mullo_epi32(sc.m[2 * j + 1], _mm512_set1_epi32(int16_t(uint32_t(pr) >> 16))));
          }
          fa[t] = V::fnmadd(V::fcvt(M), V::fmul(sc.dmin, dx), fa[t]);
        }
      }
    }
  }

  template <int NT>
  static void rows_n(const QuantizedActivations& a, const Tensor& W, float* Y, int o0, int o1) {
    // Permuted once per call and thread (rows come in many blocks per call).
    static thread_local std::vector<int8_t> xp;
    static thread_local uint64_t xp_id = 0;
    static thread_local size_t xld = 0;
    if (xp_id != a.id) xld = permute_x(a, xp), xp_id = a.id;
    // The first panel has no predecessor to fetch it: ask for all of it now.
    const size_t first = size_t(std::min(16, o1 - o0)) * row_stride(W);
    const char* p0 = static_cast<const char*>(W.data) + size_t(o0) * row_stride(W);
    for (size_t pb = 0; pb < first; pb += 64) _mm_prefetch(p0 + pb, _MM_HINT_T0);
    for (int og = o0; og < o1; og += 16) panel<NT>(a, xp.data(), xld, W, Y, og, std::min(16, o1 - og));
  }

  static void rows(const QuantizedActivations& a, const Tensor& W, float* Y, int o0, int o1) {
    if (a.K % 128) return G::rows(a, W, Y, o0, o1);  // whole steps only; same results either way
    switch (a.T) {
      case 1: return rows_n<1>(a, W, Y, o0, o1);
      case 2: return rows_n<2>(a, W, Y, o0, o1);
      case 3: return rows_n<3>(a, W, Y, o0, o1);
      default: return rows_n<4>(a, W, Y, o0, o1);
    }
  }
};

// Up to kMaxStreamT activation rows stream the weights once (decode, small batches); larger batches
// go through the packed kernel, where packing pays for itself.
inline constexpr int kMaxStreamT = 4;
template <class V>
void qmatmul_rows_decode(const QuantizedActivations& a, const Tensor& W, float* Y, int o0, int o1) {
  if (a.T <= kMaxStreamT) q::with_layout(W.dtype, [&]<DType DT>() { QGemv<V, DT>::rows(a, W, Y, o0, o1); });
  else qmatmul_rows<V>(a, W, Y, o0, o1);
}

}  // namespace
}  // namespace camelid::kernels::qsimd
