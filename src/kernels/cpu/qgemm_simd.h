#pragma once
// The quantized matmul on packed weight panels, shared by the AVX2 and AVX-512 builds: each
// includes this with its own `V` (register width, integer dot product with or without VNNI) and
// -m flags. TU-local (see qlayout.h).
//
// Why packed panels: with one output row per vector lane (R rows, R = int32 lanes), a dot
// product instruction adds 4 products per row per step, and a row's block sum builds up in its
// own lane over the block's steps, so converting it to float and scaling costs one instruction
// per R rows per block, not per row. The weights are rearranged for that once per call ("packed":
// each 4 consecutive weights of a row side by side with the other rows' 4, R rows per vector),
// into L1-sized chunks of K that every row tile of X then reuses from cache: TT activation rows
// x TV vectors of weights per register tile. Activations are broadcast 4 bytes at a time.
// The float steps are those of qmatmul.h, one lane per output; integer sums are exact, so the
// results equal the portable kernel's bit for bit.
#include <algorithm>
#include <cstring>
#include <vector>
#include <immintrin.h>

#include "kernels/cpu/qlayout.h"
#include "kernels/cpu/qmatmul.h"
#include "kernels/cpu/qscales_simd.h"
#include "kernels/cpu/qunpack_simd.h"

namespace camelid::kernels::qsimd {
namespace {

inline int32_t load_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// One chunk of packed weights for TV*R rows and nbc blocks. q: per group of 4 elements, the 4
// bytes of each row in turn ([group][row][4]); scales per block (and sub-block) per row.
struct Panel {
  uint8_t* q;
  float* d;     // [nbc][rows]: d (Block32*) or the super-block d
  float* dmin;  // [nbc][rows]: m (Block32Min) or dmin (SuperMin)
  int32_t* sc;  // [nbc][NS][rows]: sub-block scales (Super*)
  int32_t* mp;  // [nbc][NS/2][rows]: sub-block mins 2j | 2j+1 << 16 (SuperMin)
};

template <class V, DType DT>
struct QGemm {
  using L = q::Layout<DT>;
  using ivec = typename V::ivec;
  using fvec = typename V::fvec;
  static constexpr int R = V::R, TV = V::TV, TVR = R * TV, TT = V::TT;
  static constexpr bool kBlock32 = L::kind == q::Kind::Block32 || L::kind == q::Kind::Block32Min;
  static constexpr bool kMin = L::kind == q::Kind::Block32Min || L::kind == q::Kind::SuperMin;
  // Without VNNI the unsigned x signed byte products go through vpmaddubsw, whose 16-bit pair
  // sums could saturate for 8-bit weights (255 * 127 * 2): those types multiply signed weights
  // by sign-adjusted activations instead, and skip the offset.
  static constexpr bool kSigned = !V::vnni && L::C == 128;
  static constexpr bool kBias = L::C != 0 && !kSigned;
  static constexpr int XB = L::X == DType::Q8_0 ? 34 : L::X == DType::Q8_1 ? 36 : 292;  // activation block bytes
  static constexpr int XO = L::X == DType::Q8_0 ? 2 : 4;                                 // offset of its int8 values
  static constexpr int kChunk = std::max(1, V::kchunk / L::QB);                         // blocks per packed chunk
  using W = typename V::template W<kSigned>;

  // Outputs t0 .. t0+N-1 of one chunk (blocks b0 .. b0+nbc-1) into acc ([N][TVR], running sums).
  template <int N>
  static void tile(const QuantizedActivations& a, int t0, const Panel& p, int b0, int nbc, float* acc) {
    const uint8_t* xr[N];
    for (int t = 0; t < N; ++t) xr[t] = a.q + size_t(t0 + t) * a.row_bytes + size_t(b0) * XB + XO;
    if constexpr (kBlock32) {
      fvec fa[N][TV];
#pragma GCC unroll 8
      for (int t = 0; t < N; ++t)
#pragma GCC unroll 4
        for (int v = 0; v < TV; ++v) fa[t][v] = V::fload(acc + t * TVR + v * R);
      for (int b = 0; b < nbc; ++b) {
        const size_t blk = size_t(t0) * a.nb + b0 + b;  // row t: blk + t * nb
        ivec ib[N][TV];
#pragma GCC unroll 8
        for (int t = 0; t < N; ++t) {
          const ivec init = kBias ? V::iset1(a.bias[blk + size_t(t) * a.nb]) : V::izero();
#pragma GCC unroll 4
          for (int v = 0; v < TV; ++v) ib[t][v] = init;
        }
        const uint8_t* qb = p.q + size_t(b) * 8 * TVR * 4;
#pragma GCC unroll 8
        for (int g = 0; g < 8; ++g) {
          W w[TV];
#pragma GCC unroll 4
          for (int v = 0; v < TV; ++v) w[v] = V::template wload<kSigned>(qb + (g * TVR + v * R) * 4);
#pragma GCC unroll 8
          for (int t = 0; t < N; ++t) {
            const ivec x = V::iset1(load_i32(xr[t] + b * XB + 4 * g));
#pragma GCC unroll 4
            for (int v = 0; v < TV; ++v) ib[t][v] = V::template dot<kSigned>(ib[t][v], w[v], x);
          }
        }
        fvec dv[TV];
#pragma GCC unroll 4
        for (int v = 0; v < TV; ++v) dv[v] = V::fload(p.d + b * TVR + v * R);
#pragma GCC unroll 8
        for (int t = 0; t < N; ++t) {
          const fvec dx = V::fset1(a.dx[blk + size_t(t) * a.nb]);
#pragma GCC unroll 4
          for (int v = 0; v < TV; ++v) fa[t][v] = V::fmadd(V::fcvt(ib[t][v]), V::fmul(dv[v], dx), fa[t][v]);
        }
        if constexpr (kMin) {
#pragma GCC unroll 4
          for (int v = 0; v < TV; ++v) dv[v] = V::fload(p.dmin + b * TVR + v * R);
#pragma GCC unroll 8
          for (int t = 0; t < N; ++t) {
            const fvec sx = V::fset1(a.sx[blk + size_t(t) * a.nb]);
#pragma GCC unroll 4
            for (int v = 0; v < TV; ++v) fa[t][v] = V::fmadd(dv[v], sx, fa[t][v]);
          }
        }
      }
#pragma GCC unroll 8
      for (int t = 0; t < N; ++t)
#pragma GCC unroll 4
        for (int v = 0; v < TV; ++v) V::fstore(acc + t * TVR + v * R, fa[t][v]);
    } else {
      constexpr int NS = L::NS, G = L::S / 4;
      for (int b = 0; b < nbc; ++b) {
        const size_t blk = size_t(t0) * a.nb + b0 + b;
        ivec is[N][TV];
#pragma GCC unroll 8
        for (int t = 0; t < N; ++t)
#pragma GCC unroll 4
          for (int v = 0; v < TV; ++v) is[t][v] = V::izero();
        for (int j = 0; j < NS; ++j) {
          ivec ib[N][TV];
#pragma GCC unroll 8
          for (int t = 0; t < N; ++t) {
            const ivec init = kBias ? V::iset1(a.bias[(blk + size_t(t) * a.nb) * NS + j]) : V::izero();
#pragma GCC unroll 4
            for (int v = 0; v < TV; ++v) ib[t][v] = init;
          }
          const uint8_t* qb = p.q + (size_t(b) * (L::QB / 4) + j * G) * TVR * 4;
#pragma GCC unroll 8
          for (int g = 0; g < G; ++g) {
            W w[TV];
#pragma GCC unroll 4
            for (int v = 0; v < TV; ++v) w[v] = V::template wload<kSigned>(qb + (g * TVR + v * R) * 4);
#pragma GCC unroll 8
            for (int t = 0; t < N; ++t) {
              const ivec x = V::iset1(load_i32(xr[t] + b * XB + j * L::S + 4 * g));
#pragma GCC unroll 4
              for (int v = 0; v < TV; ++v) ib[t][v] = V::template dot<kSigned>(ib[t][v], w[v], x);
            }
          }
#pragma GCC unroll 4
          for (int v = 0; v < TV; ++v) {
            const ivec sc = V::iload(p.sc + (b * NS + j) * TVR + v * R);
#pragma GCC unroll 8
            for (int t = 0; t < N; ++t) is[t][v] = V::iadd(is[t][v], V::imullo(ib[t][v], sc));
          }
        }
#pragma GCC unroll 4
        for (int v = 0; v < TV; ++v) {
          const fvec dv = V::fload(p.d + b * TVR + v * R);
#pragma GCC unroll 8
          for (int t = 0; t < N; ++t) {
            const size_t bt = blk + size_t(t) * a.nb;
            const fvec dx = V::fset1(a.dx[bt]);
            float* f = acc + t * TVR + v * R;
            fvec r = V::fmadd(V::fcvt(is[t][v]), V::fmul(dv, dx), V::fload(f));
            if constexpr (kMin) {
              ivec m = V::izero();
              for (int j = 0; j < NS / 2; ++j)
                m = V::iadd(m, V::imadd16(V::iload(p.mp + (b * NS / 2 + j) * TVR + v * R), V::iset1(a.pairs[bt * NS / 2 + j])));
              r = V::fnmadd(V::fcvt(m), V::fmul(V::fload(p.dmin + b * TVR + v * R), dx), r);
            }
            V::fstore(f, r);
          }
        }
      }
    }
  }

  // Packs rows o .. o+nrows-1 (nrows <= TVR), blocks b0 .. b0+nbc-1. Lanes past nrows repeat
  // the last row (never stored to Y). tmp: R rows of kpad bytes, unpacked before transposing.
  static void pack(const Tensor& W, int o, int nrows, int b0, int nbc, int kpad, const Panel& p, uint8_t* tmp) {
    const int kbytes = nbc * L::QB;
    for (int v = 0; v < TV; ++v) {
      const int first = std::min(v * R, nrows - 1);
      for (int r = 0; r < R; ++r) {
        uint8_t* u = tmp + size_t(r) * kpad;
        const uint8_t* wr = W.row(o + std::min(v * R + r, nrows - 1)) + size_t(b0) * L::BB;
        for (int b = 0; b < nbc; ++b) values_simd<DT>(wr + size_t(b) * L::BB, u + b * L::QB);
        std::memset(u + kbytes, 0, kpad - kbytes);
      }
      for (int k = 0; k < kpad; k += 4 * R) V::transpose(tmp + k, kpad, p.q + (size_t(k / 4) * TVR + v * R) * 4, TVR * 4, kSigned);
      const ivec rows = V::row_offsets(0, nrows - 1 - first, W.row_nbytes());
      const uint8_t* base = W.row(o + first) + size_t(b0) * L::BB;
      BlockScalesV<V> s;
      for (int b = 0; b < nbc; ++b) {
        scales_simd<V, DT>(base + size_t(b) * L::BB, rows, s);
        const int col = b * TVR + v * R;
        V::fstore(p.d + col, s.d);
        if constexpr (kMin) V::fstore(p.dmin + col, s.dmin);
        if constexpr (!kBlock32)
          for (int j = 0; j < L::NS; ++j) V::istore(p.sc + (b * L::NS + j) * TVR + v * R, s.sc[j]);
        if constexpr (L::kind == q::Kind::SuperMin)
          for (int j = 0; j < L::NS / 2; ++j)
            V::istore(p.mp + (b * L::NS / 2 + j) * TVR + v * R, V::ior(s.m[2 * j], V::isll(s.m[2 * j + 1], 16)));
      }
    }
  }

  template <int... I>
  static void tail_tile(int n, const QuantizedActivations& a, int t0, const Panel& p, int b0, int nbc, float* acc,
                        std::integer_sequence<int, I...>) {
    using Fn = void (*)(const QuantizedActivations&, int, const Panel&, int, int, float*);
    constexpr Fn fns[] = {&tile<I + 1>...};
    fns[n - 1](a, t0, p, b0, nbc, acc);
  }

  static void rows(const QuantizedActivations& a, const Tensor& W, float* Y, int o0, int o1) {
    const int T = a.T, O = int(W.rows), nb = a.nb;
    const int nbc = std::min(nb, kChunk), kpad = (nbc * L::QB + 4 * R - 1) / (4 * R) * (4 * R);
    // Scratch, reused across calls: packed values, scales, unpacked rows, running sums.
    static thread_local std::vector<uint8_t> qbuf, tmpbuf;
    static thread_local std::vector<float> fbuf, acc;
    static thread_local std::vector<int32_t> ibuf;
    qbuf.resize(size_t(kpad) * TVR + 64);
    tmpbuf.resize(size_t(kpad) * R);
    fbuf.resize(size_t(2) * nbc * TVR);
    ibuf.resize(size_t(nbc) * L::NS * 3 / 2 * TVR);
    acc.resize(size_t(T) * TVR);
    const Panel p{qbuf.data(), fbuf.data(), fbuf.data() + nbc * TVR, ibuf.data(), ibuf.data() + nbc * L::NS * TVR};
    for (int og = o0; og < o1; og += TVR) {
      const int nrows = std::min(TVR, o1 - og);
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int b0 = 0; b0 < nb; b0 += nbc) {
        const int n = std::min(nbc, nb - b0);
        pack(W, og, nrows, b0, n, kpad, p, tmpbuf.data());
        int t = 0;
        for (; t + TT <= T; t += TT) tile<TT>(a, t, p, b0, n, acc.data() + size_t(t) * TVR);
        if (t < T) tail_tile(T - t, a, t, p, b0, n, acc.data() + size_t(t) * TVR, std::make_integer_sequence<int, TT - 1>{});
      }
      for (int t = 0; t < T; ++t) std::memcpy(Y + size_t(t) * O + og, acc.data() + size_t(t) * TVR, size_t(nrows) * 4);
    }
  }
};

template <class V>
void qmatmul_rows(const QuantizedActivations& a, const Tensor& W, float* Y, int o0, int o1) {
  q::with_layout(W.dtype, [&]<DType DT>() { QGemm<V, DT>::rows(a, W, Y, o0, o1); });
}

}  // namespace
}  // namespace camelid::kernels::qsimd
