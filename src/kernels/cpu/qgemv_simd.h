#pragma once
// Decode (one to four activation rows) for the 256-bit builds. The packed kernel (qgemm_simd.h)
// rearranges the weights on every call, which pays off only when many activation rows share the
// panels; at T = 1 it made AVX2 decode 2-3x slower than llama.cpp. Here the weights stream from
// memory once: R rows at a time, each block is unpacked in registers and multiplied by the
// activations (two rows per register for the 4- and 8-bit types, see products()); a transposing
// reduction turns the products into one vector with a row per lane, and from there the integer
// and float steps are the packed kernel's (qmatmul.h), so decode and prefill give the same bits.
// TU-local (see qlayout.h).
#include <algorithm>
#include <immintrin.h>

#include "kernels/cpu/qgemm_simd.h"

namespace camelid::kernels::qsimd {
namespace {

// 8 rows' vectors of 8 int32 -> lane r of lo (hi): the sum of lanes 0-3 (4-7) of a[r].
inline void reduce8_halves(const __m256i* a, __m256i& lo, __m256i& hi) {
  const __m256i t0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
  const __m256i t1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
  lo = _mm256_permute2x128_si256(t0, t1, 0x20), hi = _mm256_permute2x128_si256(t0, t1, 0x31);
}

template <class V, DType DT>
struct QGemv256 {
  using L = q::Layout<DT>;
  using G = QGemm<V, DT>;
  using ivec = typename V::ivec;
  using fvec = typename V::fvec;
  static_assert(V::R == 8, "one row per 32-bit lane of a 256-bit vector");
  static constexpr int R = 8, NS = L::NS, NV = L::QB / 32;  // NV: 32-element vectors per block
  static constexpr bool kSigned = G::kSigned;

  // Without VNNI, the two 16-bit pair sums of the paired unsigned types (4-bit: at most
  // 2 * 2 * 15 * 127) are added before one vpmaddwd widens them; signed bytes take vpsignb.
  static constexpr bool kPair16 = !V::vnni && !kSigned;
  static constexpr bool kPaired = DT == DType::Q4_0 || DT == DType::Q4_1 || DT == DType::IQ4_NL || DT == DType::Q8_0 || DT == DType::Q4_K;

  // The 8 rows' integer sums over elements 32v .. 32v+31 (at byte `off` of each row's block),
  // lane r for row r. Paired types: rows r and r + 4 share registers (unpack_pair), each half of
  // the activations is broadcast to both, and three horizontal adds put row r in lane r (half
  // the reduction of the row-by-row way, which S == 16 types keep: lo and hi are sub-blocks).
  static void products(const uint8_t* const* rows, size_t off, int v, const uint8_t* xq, ivec& lo, ivec& hi) {
    if constexpr (kPaired) {
      const ivec x0 = _mm256_broadcastsi128_si256(load16(xq)), x1 = _mm256_broadcastsi128_si256(load16(xq + 16));
      ivec p[4];
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) {
        ivec u0, u1;
        unpack_pair<DT>(rows[r] + off, rows[r + 4] + off, v, u0, u1);
        if constexpr (kPair16)
          p[r] = V::widen16(V::izero(), V::dot16(V::dot16(V::izero(), u0, x0), u1, x1));
        else
          p[r] = V::template dot<kSigned>(V::template dot<kSigned>(V::izero(), V::template from_u<kSigned>(u0), x0),
                                          V::template from_u<kSigned>(u1), x1);
      }
      lo = reduce_pairs(p);
    } else {  // row by row
      const ivec xv = V::iload(xq);
      ivec p[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) p[r] = V::template dot<kSigned>(V::izero(), V::template from_u<kSigned>(unpack32<DT>(rows[r] + off, v)), xv);
      reduce8_halves(p, lo, hi);
      if constexpr (L::S == 32) lo = V::iadd(lo, hi);
    }
  }

  // Lane r: the 32-bit word at byte `off` of row r. Scalar loads paired in 64-bit registers:
  // on AMD (Zen 2/3) vpgatherdd costs more than these, and stalled the kernel once per block.
  static ivec words(const uint8_t* const* rows, size_t off) {
    uint64_t w[4];
    for (int i = 0; i < 4; ++i) w[i] = q::load_u32(rows[2 * i] + off) | uint64_t(q::load_u32(rows[2 * i + 1] + off)) << 32;
    return _mm256_setr_epi64x(int64_t(w[0]), int64_t(w[1]), int64_t(w[2]), int64_t(w[3]));
  }

  // Lane r: the f16 at byte `off` of row r, widened.
  static fvec halves(const uint8_t* const* rows, size_t off) {
    uint64_t h[2] = {0, 0};
    for (int r = 0; r < R; ++r) h[r / 4] |= uint64_t(q::load_u16(rows[r] + off)) << (16 * (r % 4));
    return _mm256_cvtph_ps(_mm_set_epi64x(int64_t(h[1]), int64_t(h[0])));
  }

  // p[r]: lanes 0-3 row r, lanes 4-7 row r + 4 -> lane r: row r's sum.
  static ivec reduce_pairs(const ivec* p) {
    return _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
  }

  // Rows og .. og+nrows-1 (nrows <= R, o1: the end of the caller's range) of Y for the NT
  // activation rows.
  template <int NT>
  static void group(const QuantizedActivations& a, const Tensor& W, float* Y, int og, int nrows, int o1) {
    const size_t rb = W.row_nbytes();
    const uint8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = static_cast<const uint8_t*>(W.data) + size_t(og + std::min(r, nrows - 1)) * rb;
    const uint8_t* next = rows[0] + size_t(R) * rb;
    const size_t next_bytes = size_t(std::clamp(o1 - og - R, 0, R)) * rb, pf_step = (next_bytes / size_t(a.nb) + 63) / 64 * 64;
    fvec fa[NT];
    for (int t = 0; t < NT; ++t) fa[t] = _mm256_setzero_ps();
    for (int b = 0; b < a.nb; ++b) {
      // The next group's rows (contiguous after these) stream into L2 at the rate these are
      // consumed, a whole group ahead: DRAM latency stays hidden behind 8 short row streams.
      for (size_t pb = size_t(b) * pf_step; pb < std::min(next_bytes, size_t(b + 1) * pf_step); pb += 64)
        _mm_prefetch(reinterpret_cast<const char*>(next + pb), _MM_HINT_T1);
      BlockScalesV<V> s;
      if constexpr (G::kBlock32) {  // f16 d (and m) at the block's start: 16-bit loads, one widening
        s.d = halves(rows, size_t(b) * L::BB);
        if constexpr (L::kind == q::Kind::Block32Min) s.dmin = halves(rows, size_t(b) * L::BB + 2);
      } else {
        scales_simd_from<V, DT>([&](int off) { return words(rows, size_t(b) * L::BB + off); }, s);
      }
      ivec S[NT];
      for (int t = 0; t < NT; ++t) S[t] = V::izero();
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v)  // 32 elements: a block, one sub-block of 32 or two of 16
        for (int t = 0; t < NT; ++t) {
          const size_t bt = size_t(t) * a.nb + b;
          const uint8_t* xq = a.q + size_t(t) * a.row_bytes + size_t(b) * G::XB + G::XO + 32 * v;
          ivec lo, hi;  // lane r: row r's sum over elements 0-15 and 16-31 (lo: all 32 when S == 32)
          products(rows, size_t(b) * L::BB, v, xq, lo, hi);
          if constexpr (G::kBlock32) {
            S[t] = lo;
            if constexpr (G::kBias) S[t] = V::iadd(S[t], V::iset1(a.bias[bt]));
          } else {
            constexpr int per = L::S == 32 ? 1 : 2;  // sub-blocks in these 32 elements
            ivec ib[2] = {lo, hi};
            for (int h = 0; h < per; ++h) {
              if constexpr (G::kBias) ib[h] = V::iadd(ib[h], V::iset1(a.bias[bt * NS + per * v + h]));
              S[t] = V::iadd(S[t], V::imullo(ib[h], s.sc[per * v + h]));
            }
          }
        }
      for (int t = 0; t < NT; ++t) {
        const size_t bt = size_t(t) * a.nb + b;
        const fvec dx = V::fset1(a.dx[bt]);
        fa[t] = V::fmadd(V::fcvt(S[t]), V::fmul(s.d, dx), fa[t]);
        if constexpr (L::kind == q::Kind::Block32Min) fa[t] = V::fmadd(s.dmin, V::fset1(a.sx[bt]), fa[t]);
        if constexpr (L::kind == q::Kind::SuperMin) {
          ivec m = V::izero();
          for (int j = 0; j < NS / 2; ++j)
            m = V::iadd(m, V::imadd16(V::ior(s.m[2 * j], V::isll(s.m[2 * j + 1], 16)), V::iset1(a.pairs[bt * NS / 2 + j])));
          fa[t] = V::fnmadd(V::fcvt(m), V::fmul(s.dmin, dx), fa[t]);
        }
      }
    }
    for (int t = 0; t < NT; ++t) {
      alignas(32) float out[R];
      V::fstore(out, fa[t]);
      std::memcpy(Y + size_t(t) * W.rows + og, out, size_t(nrows) * sizeof(float));
    }
  }

  template <int NT>
  static void rows_n(const QuantizedActivations& a, const Tensor& W, float* Y, int o0, int o1) {
    // The first group has no predecessor to fetch it: ask for all of it now.
    const char* first = static_cast<const char*>(W.data) + size_t(o0) * W.row_nbytes();
    for (size_t pb = 0; pb < size_t(std::min(R, o1 - o0)) * W.row_nbytes(); pb += 64) _mm_prefetch(first + pb, _MM_HINT_T0);
    for (int og = o0; og < o1; og += R) group<NT>(a, W, Y, og, std::min(R, o1 - og), o1);
  }
  static void rows(const QuantizedActivations& a, const Tensor& W, float* Y, int o0, int o1) {
    switch (a.T) {
      case 1: return rows_n<1>(a, W, Y, o0, o1);
      case 2: return rows_n<2>(a, W, Y, o0, o1);
      case 3: return rows_n<3>(a, W, Y, o0, o1);
      default: return rows_n<4>(a, W, Y, o0, o1);
    }
  }
};

// Up to 4 activation rows stream the weights once (decode, small batches); larger batches go
// through the packed kernel, where packing pays for itself.
template <class V>
void qmatmul_rows_decode256(const QuantizedActivations& a, const Tensor& W, float* Y, int o0, int o1) {
  if (a.T <= 4) q::with_layout(W.dtype, [&]<DType DT>() { QGemv256<V, DT>::rows(a, W, Y, o0, o1); });
  else qmatmul_rows<V>(a, W, Y, o0, o1);
}

}  // namespace
}  // namespace camelid::kernels::qsimd
