#pragma once
// The batched (prefill) matmul for f32 weights as an outer-product GEMM on packed panels
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
#include <vector>
#include <immintrin.h>

#include "kernels/cpu/gemm_simd.h"
#include "kernels/kernels.h"

namespace camelid::kernels::simd {

template <class V, int MR, int NRV>
struct Packed {
  using vec = typename V::vec;
  static constexpr int L = V::lanes, NR = NRV * L;
  static int steps(int K) { return (K + L - 1) / L; }
  static constexpr int kAhead = 8;  // steps of W prefetched ahead while packing
  // Packed X: MR-row tile i, residue j, step m, row r at ((i * L + j) * steps + m) * MR + r.
  static size_t x_floats(int T, int K) { return size_t((T + MR - 1) / MR) * MR * L * size_t(steps(K)); }

  // Elements k .. k+L-1 of rows[r] (r < n; zero rows after), transposed: v[j] lane r = element
  // k + j of row r. Past K, elements are zero (from a zero-padded copy, as the dot-product tail).
  template <DType DT>
  static void load_block(const uint8_t* const* rows, int n, int k, int K, vec v[L]) {
    if (n == L && K - k >= L) {  // the common case, without the branches below
      for (int r = 0; r < L; ++r) v[r] = V::template load_w<DT>(rows[r], k);
      return V::transpose(v);
    }
    for (int r = 0; r < L; ++r) {
      if (r >= n) {
        v[r] = V::zero();
      } else if (K - k >= L) {
        v[r] = V::template load_w<DT>(rows[r], k);
      } else {
        alignas(64) uint8_t tail[L * 4] = {};
        std::memcpy(tail, rows[r] + size_t(k) * dtype_size(DT), size_t(K - k) * dtype_size(DT));
        v[r] = V::template load_w<DT>(tail, 0);
      }
    }
    V::transpose(v);
  }

  static void pack_x(const float* X, int T, int K, float* Xp) {
    const int KS = steps(K);
    for (int i = 0; i * MR < T; ++i) {
      const int n = std::min(MR, T - i * MR);
      const uint8_t* rows[L];
      for (int r = 0; r < n; ++r) rows[r] = reinterpret_cast<const uint8_t*>(X + size_t(i * MR + r) * K);
      for (int m = 0; m < KS; ++m) {
        vec v[L];
        load_block<DType::F32>(rows, n, m * L, K, v);
        for (int j = 0; j < L; ++j) {
          alignas(64) float lanes[L];
          V::store(lanes, v[j]);
          std::memcpy(Xp + ((size_t(i) * L + j) * KS + m) * MR, lanes, MR * sizeof(float));
        }
      }
    }
  }

  // n (<= NR) rows of W as an f32 W^T panel: step m, residue j, row c at (m * L + j) * NR + c
  // (written in order; the GEMM of residue j reads every L-th row of NR floats).
  template <DType DT>
  static void pack_w(const uint8_t* W, size_t ldw, int n, int K, float* Bp) {
    const int KS = steps(K);
    const uint8_t* rows[NRV][L];
    for (int c = 0; c < std::min(n, NR); ++c) rows[c / L][c % L] = W + size_t(c) * ldw;
    for (int m = 0; m < KS; ++m)
      for (int g = 0; g < NRV; ++g) {
        const int ng = std::clamp(n - g * L, 0, L);
        // The rows are NR streams, more than the hardware prefetchers follow: ask for each a few
        // steps ahead, or every load of the transposition waits on L2.
        if (m + kAhead < KS)
          for (int r = 0; r < ng; ++r)
            _mm_prefetch(reinterpret_cast<const char*>(rows[g][r] + size_t(m + kAhead) * L * dtype_size(DT)), _MM_HINT_T0);
        vec v[L];
        load_block<DT>(rows[g], ng, m * L, K, v);
        for (int j = 0; j < L; ++j) V::store(Bp + (size_t(m) * L + j) * NR + g * L, v[j]);
      }
  }

  // Rows [o0, o1) of Y = X W^T for the T rows packed in Xp.
  template <DType DT>
  static void rows(const float* Xp, int T, const Tensor& W, float* Y, int o0, int o1) {
    const int K = int(W.cols), O = int(W.rows), KS = steps(K);
    const size_t ldw = size_t(K) * dtype_size(DT);
    static thread_local std::vector<float> bp, part;
    bp.resize(size_t(KS) * L * NR), part.resize(size_t(L) * MR * NR);
    const int tiles = (T + MR - 1) / MR;
    const uint8_t* w = static_cast<const uint8_t*>(W.data);
    for (int o = o0; o < o1; o += NR) {
      const int n = std::min(NR, o1 - o);
      pack_w<DT>(w + size_t(o) * ldw, ldw, n, K, bp.data());
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
          gemm_tile<V, MR, NRV>(Xp + (size_t(i) * L + j) * KS * MR, bp.data() + size_t(j) * NR, size_t(L) * NR,
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

template <class V, int MR, int NRV>
void pack_x(const float* X, int T, int K, float* Xp) {
  Packed<V, MR, NRV>::pack_x(X, T, K, Xp);
}
template <class V, int MR, int NRV>
size_t packed_x_floats(int T, int K) {
  return Packed<V, MR, NRV>::x_floats(T, K);
}
// f32 weights only (dispatch sends no other type: f16/bf16 are faster in the dot-product kernel).
template <class V, int MR, int NRV>
void matmul_rows_packed(const float* Xp, int T, const Tensor& W, float* Y, int o0, int o1) {
  if (W.dtype == DType::F32) Packed<V, MR, NRV>::template rows<DType::F32>(Xp, T, W, Y, o0, o1);
}

}  // namespace camelid::kernels::simd
