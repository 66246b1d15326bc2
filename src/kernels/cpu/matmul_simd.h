#pragma once
// The SIMD matmul shared by the AVX-512 and AVX2 builds: each ISA file includes this header with
// a `V` traits type (register width, loads that widen f16/bf16 to f32, FMA, horizontal sum) and
// is compiled with its own -m flags. A `V` whose X elements are bf16 (V512Bf16Dot) multiplies
// pairs of bf16 directly: `kstep` K elements per step, `xvec` the type of X and W vectors.
//
// Y[t, o] = X[t, :] . W[o, :] is computed "dot-product style": one vector accumulator per output
// element, running over K in vector-width chunks in order, then one fixed horizontal sum. Every
// output element therefore sees the same sequence of operations whatever T is and whichever tile
// it falls in, so a row's logits are bit-identical alone or inside a batch (what continuous
// batching needs for seed-reproducible output). Register tiles of TT rows of X x TO rows of W
// share loads; the W tile stays in L1 while all row tiles of X pass over it, so W is read from
// memory once per call, and X is processed in blocks that fit L2.
#include <algorithm>
#include <cstring>
#include <utility>
#include <immintrin.h>

#include "kernels/kernels.h"

namespace camelid::kernels::simd {

// The sums of 8 AVX vectors as one (lane j = sum of a[j]); both SIMD files are built with AVX2.
// static: each file keeps its own copy, compiled with its own flags.
static inline __m256 sums8(const __m256* a) {
  const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
}

template <class V, DType DT>
struct Tile {
  using vec = typename V::vec;
  using xvec = typename V::xvec;    // X and W values of one step
  using xelem = typename V::xelem;  // element type of X
  static constexpr int L = V::kstep;

  // One TT x TO tile of outputs over the whole of K. `next`: `n_next` W rows of the following
  // tile, to prefetch during this pass, so neither decode nor batches wait on DRAM tile after tile.
  template <int TT, int TO>
  static void run(const xelem* X, int ldx, const uint8_t* W, size_t ldw_bytes, int K, float* Y, int ldy,
                  const uint8_t* next, int n_next) {
    vec acc[TT][TO];
    for (int t = 0; t < TT; ++t)
      for (int o = 0; o < TO; ++o) acc[t][o] = V::zero();
    const int Kv = K / L * L;
    for (int k = 0; k < Kv; k += L) {
      xvec x[TT];
      for (int t = 0; t < TT; ++t) x[t] = V::load(X + size_t(t) * ldx + k);
      if ((size_t(k) * dtype_size(DT)) % 64 == 0)  // once per line
        for (int o = 0; o < n_next; ++o) _mm_prefetch(reinterpret_cast<const char*>(next + o * ldw_bytes + size_t(k) * dtype_size(DT)), _MM_HINT_T1);
      for (int o = 0; o < TO; ++o) {
        const xvec w = V::template load_w<DT>(W + o * ldw_bytes, k);
        for (int t = 0; t < TT; ++t) acc[t][o] = V::fma(x[t], w, acc[t][o]);
      }
    }
    if (Kv < K) {  // tail: zero-padded copies keep the same operation sequence for every tile
      const int n = K - Kv;
      alignas(64) xelem xt[TT][L];
      alignas(64) uint8_t wt[L * 4];
      xvec x[TT];
      for (int t = 0; t < TT; ++t) {
        std::memset(xt[t], 0, sizeof xt[t]);
        std::memcpy(xt[t], X + size_t(t) * ldx + Kv, size_t(n) * sizeof(xelem));
        x[t] = V::load(xt[t]);
      }
      for (int o = 0; o < TO; ++o) {
        std::memset(wt, 0, sizeof wt);
        std::memcpy(wt, W + o * ldw_bytes + size_t(Kv) * dtype_size(DT), size_t(n) * dtype_size(DT));
        const xvec w = V::template load_w<DT>(wt, 0);
        for (int t = 0; t < TT; ++t) acc[t][o] = V::fma(x[t], w, acc[t][o]);
      }
    }
    for (int t = 0; t < TT; ++t)
      for (int o = 0; o < TO; ++o) Y[size_t(t) * ldy + o] = V::sum(acc[t][o]);
  }

  using TileFn = void (*)(const xelem*, int, const uint8_t*, size_t, int, float*, int, const uint8_t*, int);
  template <int TT, int... R>
  static constexpr TileFn remainder_fn(int r, std::integer_sequence<int, R...>) {
    constexpr TileFn fns[] = {nullptr, &run<TT, R + 1>...};
    return fns[r];
  }

  // Tiles with TT rows over output rows [o0, o1): full TO-wide tiles, then the remainder.
  template <int TT, int TO>
  static void row_tile(const xelem* X, int K, const uint8_t* W, size_t ldw, int O, float* Y, int o0, int o1,
                       const uint8_t* next = nullptr, int n_next = 0) {
    int o = o0;
    for (; o + TO <= o1; o += TO) run<TT, TO>(X, K, W + o * ldw, ldw, K, Y + o, O, next, n_next);
    if (o < o1) remainder_fn<TT>(o1 - o, std::make_integer_sequence<int, TO - 1>{})(X, K, W + o * ldw, ldw, K, Y + o, O, next, n_next);
  }

  using RowTileFn = void (*)(const xelem*, int, const uint8_t*, size_t, int, float*, int, int, const uint8_t*, int);
  template <int TO, int... R>
  static constexpr RowTileFn rows_fn(int r, std::integer_sequence<int, R...>) {
    constexpr RowTileFn fns[] = {nullptr, &row_tile<R + 1, TO>...};
    return fns[r];
  }

  static void matmul_rows(const xelem* X, int T, const Tensor& W, float* Y, int o0, int o1) {
    const int K = int(W.cols), O = int(W.rows);
    const uint8_t* w = static_cast<const uint8_t*>(W.data);
    const size_t ldw = size_t(K) * dtype_size(DT);
    if (T == 1) {  // decode: stream W once with many rows in flight
      // Each group of rows brings the next group (contiguous after it) into L2 at the pace it
      // reads its own, so DRAM latency hides behind whole groups; a lookahead within each row
      // left every row's first lines unfetched, which cost most where rows are short (f16/bf16).
      constexpr int G = V::gemv_rows;
      for (size_t pb = 0; pb < size_t(std::min(G, o1 - o0)) * ldw; pb += 64) _mm_prefetch(reinterpret_cast<const char*>(w + o0 * ldw + pb), _MM_HINT_T0);
      int o = o0;
      for (; o + G <= o1; o += G) run<1, G>(X, K, w + o * ldw, ldw, K, Y + o, O, w + (o + G) * ldw, std::clamp(o1 - o - G, 0, G));
      if (o < o1) row_tile<1, G>(X, K, w, ldw, O, Y, o, o1);
      return;
    }
    // Block W rows so a block stays in L2 while X row tiles pass over it; block X rows to L2 too.
    const int ob = std::max(V::tile_o, int((256 << 10) / ldw) / V::tile_o * V::tile_o);
    const int tb = std::max(V::tile_t, int((512 << 10) / (size_t(K) * 4)) / V::tile_t * V::tile_t);
    for (int tb0 = 0; tb0 < T; tb0 += tb) {
      const int tb1 = std::min(T, tb0 + tb);
      for (int ob0 = o0; ob0 < o1; ob0 += ob) {
        const int ob1 = std::min(o1, ob0 + ob);
        for (int oo = ob0; oo < ob1; oo += V::tile_o) {
          const int oe = std::min(ob1, oo + V::tile_o);
          // The passes over this W tile prefetch the next one (only whole tiles, in range), a few
          // of its rows each: spread out, the prefetches do not crowd out the loads of the pass.
          const int n_pass = (tb1 - tb0) / V::tile_t;
          const int per_pass = oe + V::tile_o <= o1 && n_pass > 0 ? (V::tile_o + n_pass - 1) / n_pass : 0;
          int t = tb0;
          for (int pass = 0; t + V::tile_t <= tb1; t += V::tile_t, ++pass) {
            const int r0 = std::min(V::tile_o, pass * per_pass), r1 = std::min(V::tile_o, r0 + per_pass);
            row_tile<V::tile_t, V::tile_o>(X + size_t(t) * K, K, w, ldw, O, Y + size_t(t) * O, oo, oe,
                                           w + size_t(oe + r0) * ldw, r1 - r0);
          }
          if (t < tb1)  // the last rows: one narrower tile, not a row at a time
            rows_fn<V::tile_o>(tb1 - t, std::make_integer_sequence<int, V::tile_t - 1>{})(
                X + size_t(t) * K, K, w, ldw, O, Y + size_t(t) * O, oo, oe, nullptr, 0);
        }
      }
    }
  }
};

template <class V>
void matmul_rows(const float* X, int T, const Tensor& W, float* Y, int o0, int o1) {
  switch (W.dtype) {
    case DType::F32: Tile<V, DType::F32>::matmul_rows(X, T, W, Y, o0, o1); break;
    case DType::F16: Tile<V, DType::F16>::matmul_rows(X, T, W, Y, o0, o1); break;
    case DType::BF16: Tile<V, DType::BF16>::matmul_rows(X, T, W, Y, o0, o1); break;
    default: break;  // quantized types never get here (dispatch dequantizes or runs their kernels)
  }
}

// f16 / bf16 widened a vector at a time (the weights' load_w); the tail and other types by to_f32.
template <class V>
void widen(DType t, const void* src, float* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  size_t i = 0;
  if (t == DType::F16)
    for (; i + V::lanes <= n; i += V::lanes) V::store(dst + i, V::template load_w<DType::F16>(s + 2 * i, 0));
  else if (t == DType::BF16)
    for (; i + V::lanes <= n; i += V::lanes) V::store(dst + i, V::template load_w<DType::BF16>(s + 2 * i, 0));
  if (i < n) to_f32(t, s + row_bytes(t, int64_t(i)), dst + i, n - i);
}

}  // namespace camelid::kernels::simd
