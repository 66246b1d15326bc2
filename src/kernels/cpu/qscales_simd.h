#pragma once
// The scales of one block for R rows at once (one vector lane per row), as qlayout.h's scales()
// gives them for one row: each row's scale bytes are gathered as 32-bit words and decoded with
// vector shifts and masks; f16 values are widened exactly by F16C. Used when packing weights,
// where a scalar decode per row and block would cost more than the unpacking of the values.
// Gathered words stay inside their block (Q3_K / Q6_K read the word ending at the block's end).
// TU-local (see qlayout.h).
#include "kernels/cpu/qlayout.h"

namespace camelid::kernels::qsimd {
namespace {

template <class V>
struct BlockScalesV {
  typename V::fvec d, dmin;
  typename V::ivec sc[16], m[16];
};

// g(off): the vector of each row's 32-bit word at byte `off` of its block.
template <class V, DType DT, class Gather>
inline void scales_simd_from(Gather g, BlockScalesV<V>& s) {
  using iv = typename V::ivec;
  auto byte = [](iv w, int i) { return V::iand(V::isrl(w, 8 * i), V::iset1(255)); };
  if constexpr (DT == DType::Q4_0 || DT == DType::Q5_0 || DT == DType::Q8_0 || DT == DType::IQ4_NL) {
    s.d = V::half_lo(g(0));
  } else if constexpr (DT == DType::Q4_1 || DT == DType::Q5_1) {
    const iv w = g(0);
    s.d = V::half_lo(w), s.dmin = V::half_hi(w);
  } else if constexpr (DT == DType::Q2_K) {
    const iv w = g(80);
    s.d = V::half_lo(w), s.dmin = V::half_hi(w);
    for (int q = 0; q < 4; ++q) {
      const iv sw = g(4 * q);
      for (int i = 0; i < 4; ++i) {
        const iv b = byte(sw, i);
        s.sc[4 * q + i] = V::iand(b, V::iset1(15)), s.m[4 * q + i] = V::isrl(b, 4);
      }
    }
  } else if constexpr (DT == DType::Q3_K) {
    s.d = V::half_hi(g(106));
    const iv lo[2] = {g(96), g(100)}, hi = g(104);
    for (int j = 0; j < 16; ++j) {
      const iv l = V::iand(V::isrl(byte(lo[(j % 8) / 4], j % 4), j < 8 ? 0 : 4), V::iset1(15));
      const iv h = V::iand(V::isrl(byte(hi, j % 4), 2 * (j / 4)), V::iset1(3));
      s.sc[j] = V::isub(V::ior(l, V::isll(h, 4)), V::iset1(32));
    }
  } else if constexpr (DT == DType::Q4_K || DT == DType::Q5_K) {
    const iv w = g(0), s0 = g(4), s1 = g(8), s2 = g(12);
    s.d = V::half_lo(w), s.dmin = V::half_hi(w);
    for (int j = 0; j < 4; ++j) {
      s.sc[j] = V::iand(byte(s0, j), V::iset1(63)), s.m[j] = V::iand(byte(s1, j), V::iset1(63));
      const iv b2 = byte(s2, j);
      s.sc[j + 4] = V::ior(V::iand(b2, V::iset1(15)), V::isll(V::isrl(byte(s0, j), 6), 4));
      s.m[j + 4] = V::ior(V::isrl(b2, 4), V::isll(V::isrl(byte(s1, j), 6), 4));
    }
  } else if constexpr (DT == DType::Q6_K) {
    s.d = V::half_hi(g(206));
    for (int q = 0; q < 4; ++q) {
      const iv sw = g(192 + 4 * q);
      for (int i = 0; i < 4; ++i) s.sc[4 * q + i] = V::isra(V::isll(sw, 24 - 8 * i), 24);  // int8
    }
  } else if constexpr (DT == DType::IQ4_XS) {
    const iv w = g(0), sl = g(4);
    s.d = V::half_lo(w);
    const iv sh = V::isrl(w, 16);
    for (int j = 0; j < 8; ++j) {
      const iv l = V::iand(V::isrl(sl, 4 * j), V::iset1(15)), h = V::iand(V::isrl(sh, 2 * j), V::iset1(3));
      s.sc[j] = V::isub(V::ior(l, V::isll(h, 4)), V::iset1(32));
    }
  }
}

// Rows at base + rows[r] (byte offsets), gathered with one vector gather per word.
template <class V, DType DT>
inline void scales_simd(const uint8_t* base, typename V::ivec rows, BlockScalesV<V>& s) {
  scales_simd_from<V, DT>([&](int off) { return V::gather(base + off, rows); }, s);
}

}  // namespace
}  // namespace camelid::kernels::qsimd
