#pragma once
// The batched (prefill) matmul for f32 weights, and bf16 weights in the bf16-dot kernel, as an
// outer-product GEMM on packed panels
// (gemm_simd.h's register tile), giving exactly the bits of the dot-product kernel
// (matmul_simd.h) that decode uses.
//
// Why: the dot-product tile loads TT + TO full vectors per TT x TO FMAs, and with f32 weights
// its W tile outgrows L1, so prefill waited on L2. The outer-product tile loads NRV vectors of
// packed W^T and MR broadcast X values per MR x NRV FMAs: about a quarter of the bytes. Packing
// W^T costs about a sixth of the time at 128 rows, less in longer batches.
// Why the bits are the same: lane j of a dot-product accumulator sums X[k] * W[k] over the k
// with k % L == j, in order, by FMA from zero, and V::sum then adds the L lanes by halving
// (lane j + lane j + L/2, ...). Here each residue class j is a GEMM of its own over the K/L
// steps k = j, j + L, ... (packed so), the same FMAs in the same order, and the L partial tiles are
// added by the same halving tree. A K tail is the zero-padded step the dot-product kernel adds.
// Included by the AVX-512 and AVX2 files with their `V` traits (see matmul_simd.h).
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>
#include <immintrin.h>

#include "kernels/cpu/gemm_simd.h"
#include "kernels/kernels.h"

namespace camelid::kernels::simd {

// Rows are packed as 32-bit units: an f32 element, or a pair of bf16 elements (what one lane of
// vdpbf16ps multiplies: the bf16-dot kernel's residue classes are pairs).
inline int units(DType dt, int K) { return dt == DType::BF16 ? (K + 1) / 2 : K; }

template <class V, int MR, int NRV>
struct Packed {
  using vec = typename V::vec;
  static constexpr int L = V::lanes, NR = NRV * L;
  static constexpr int kAhead = 8;  // steps of W prefetched ahead while packing
  static int steps(int U) { return (U + L - 1) / L; }
  // Packed X: MR-row tile i, residue j, step m, row r at ((i * L + j) * steps + m) * MR + r.
  static size_t x_floats(int T, int U) { return size_t((T + MR - 1) / MR) * MR * L * size_t(steps(U)); }

  // Units u .. u+L-1 of rows[r] (r < n; zero rows after), transposed: v[j] lane r = unit u + j of
  // row r. Past a row's `bytes`, zeros (a zero-padded copy, as the dot-product kernel's tail).
  static void load_block(const uint8_t* const* rows, int n, int u, size_t bytes, vec v[L]) {
    const size_t off = size_t(u) * 4;
    if (n == L && off + L * 4 <= bytes) {  // the common case, without the branches below
      for (int r = 0; r < L; ++r) v[r] = V::load(reinterpret_cast<const float*>(rows[r] + off));
      return V::transpose(v);
    }
    for (int r = 0; r < L; ++r) {
      if (r >= n) {
        v[r] = V::zero();
      } else if (off + L * 4 <= bytes) {
        v[r] = V::load(reinterpret_cast<const float*>(rows[r] + off));
      } else {
        alignas(64) float tail[L] = {};
        std::memcpy(tail, rows[r] + off, bytes - off);
        v[r] = V::load(tail);
      }
    }
    V::transpose(v);
  }

  // T rows of `bytes` bytes (U units), `ld` bytes apart.
  static void pack_x(const uint8_t* X, size_t ld, size_t bytes, int T, int U, float* Xp) {
    const int KS = steps(U);
    for (int i = 0; i * MR < T; ++i) {
      const int n = std::min(MR, T - i * MR);
      const uint8_t* rows[L];
      for (int r = 0; r < n; ++r) rows[r] = X + size_t(i * MR + r) * ld;
      for (int m = 0; m < KS; ++m) {
        vec v[L];
        load_block(rows, n, m * L, bytes, v);
        for (int j = 0; j < L; ++j) {
          alignas(64) float lanes[L];
          V::store(lanes, v[j]);
          std::memcpy(Xp + ((size_t(i) * L + j) * KS + m) * MR, lanes, MR * sizeof(float));
        }
      }
    }
  }

  // n (<= NR) rows of W as a W^T panel of units: step m, residue j, row c at (m * L + j) * NR + c
  // (written in order; the GEMM of residue j reads every L-th row of NR units).
  static void pack_w(const uint8_t* W, size_t ldw, int n, int U, float* Bp) {
    const int KS = steps(U);
    const uint8_t* rows[NRV][L];
    for (int c = 0; c < std::min(n, NR); ++c) rows[c / L][c % L] = W + size_t(c) * ldw;
    for (int m = 0; m < KS; ++m)
      for (int g = 0; g < NRV; ++g) {
        const int ng = std::clamp(n - g * L, 0, L);
        // The rows are NR streams, more than the hardware prefetchers follow: ask for each a few
        // steps ahead, or every load of the transposition waits on L2.
        if (m + kAhead < KS)
          for (int r = 0; r < ng; ++r) _mm_prefetch(reinterpret_cast<const char*>(rows[g][r] + size_t(m + kAhead) * L * 4), _MM_HINT_T0);
        vec v[L];
        load_block(rows[g], ng, m * L, ldw, v);
        for (int j = 0; j < L; ++j) V::store(Bp + (size_t(m) * L + j) * NR + g * L, v[j]);
      }
  }

  // Rows [o0, o1) of Y = X W^T for the T rows packed in Xp; `Dot`: V for f32 weights (FMA), its
  // bf16-pair variant for bf16 weights (vdpbf16ps).
  template <class Dot>
  static void rows(const float* Xp, int T, const Tensor& W, float* Y, int o0, int o1) {
    const int O = int(W.rows), U = units(W.dtype, int(W.cols)), KS = steps(U);
    const size_t ldw = W.row_nbytes();
    static thread_local std::vector<float> bp, part;
    bp.resize(size_t(KS) * L * NR), part.resize(size_t(L) * MR * NR);
    const int tiles = (T + MR - 1) / MR;
    const uint8_t* w = static_cast<const uint8_t*>(W.data);
    for (int o = o0; o < o1; o += NR) {
      const int n = std::min(NR, o1 - o);
      pack_w(w + size_t(o) * ldw, ldw, n, U, bp.data());
      // While the last half of the X tiles pass over this panel (it stays in L2), the next
      // panel's rows are fetched into L2 a share per tile, so packing it does not wait on DRAM
      // (fetched earlier, the X tiles streaming through L2 would evict them).
      const int pf0 = tiles / 2, pf_tiles = tiles - pf0;
      const size_t next_bytes = size_t(std::clamp(o1 - o - NR, 0, NR)) * ldw, share = (next_bytes / pf_tiles + 63) / 64 * 64;
      const uint8_t* next = w + size_t(o + NR) * ldw;
      for (int i = 0; i * MR < T; ++i) {
        if (i >= pf0)
          for (size_t b = size_t(i - pf0) * share; b < std::min(next_bytes, size_t(i - pf0 + 1) * share); b += 64)
            _mm_prefetch(reinterpret_cast<const char*>(next + b), _MM_HINT_T1);
        const int mr = std::min(MR, T - i * MR);
        for (int j = 0; j < L; ++j)
          gemm_tile<Dot, MR, NRV>(Xp + (size_t(i) * L + j) * KS * MR, bp.data() + size_t(j) * NR, size_t(L) * NR,
                                  part.data() + size_t(j) * MR * NR, NR, KS, mr, false);
        for (int h = L / 2; h >= 1; h /= 2)  // V::sum's halving tree, for all outputs at once
          for (int j = 0; j < h; ++j) {
            float* a = part.data() + size_t(j) * MR * NR;
            const float* b = part.data() + size_t(j + h) * MR * NR;
            for (int e = 0; e < mr * NR; e += L) V::store(a + e, V::add(V::load(a + e), V::load(b + e)));
          }
        for (int r = 0; r < mr; ++r) std::memcpy(Y + size_t(i * MR + r) * O + o, part.data() + size_t(r) * NR, size_t(n) * sizeof(float));
      }
    }
  }
};

// X: T rows of K elements of `x` (f32, or bf16 for the bf16-dot kernel).
template <class V, int MR, int NRV>
void pack_x(DType x, const void* X, int T, int K, float* Xp) {
  const size_t bytes = size_t(K) * dtype_size(x);
  Packed<V, MR, NRV>::pack_x(static_cast<const uint8_t*>(X), bytes, bytes, T, units(x, K), Xp);
}
template <class V, int MR, int NRV>
size_t packed_x_floats(DType x, int T, int K) {
  return Packed<V, MR, NRV>::x_floats(T, units(x, K));
}
// f32 weights with V's FMA; bf16 weights (X packed from bf16) with Pairs, V's vdpbf16ps variant,
// where the ISA has one (void: none). Dispatch sends no other type (f16, and bf16 widened to f32,
// are faster in the dot-product kernel).
template <class V, int MR, int NRV, class Pairs>
void matmul_rows_packed(const float* Xp, int T, const Tensor& W, float* Y, int o0, int o1) {
  if (W.dtype == DType::F32) Packed<V, MR, NRV>::template rows<V>(Xp, T, W, Y, o0, o1);
  if constexpr (!std::is_void_v<Pairs>)
    if (W.dtype == DType::BF16) Packed<V, MR, NRV>::template rows<Pairs>(Xp, T, W, Y, o0, o1);
}

}  // namespace camelid::kernels::simd
