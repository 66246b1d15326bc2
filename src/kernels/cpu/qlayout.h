#pragma once
// How each quantized weight type becomes integers for the dot-product kernels, in scalar C++:
// the one definition the portable kernel runs and the SIMD packers reproduce.
//
// Every weight block is read as unsigned bytes u (0..255) with w = u - C (C the type's offset),
// integer sub-block scales and float block scales:
//   Block32     (Q4_0 Q5_0 Q8_0 IQ4_NL) value = d * (u - C)
//   Block32Min  (Q4_1 Q5_1)             value = d * u + m
//   Super       (Q3_K Q6_K IQ4_XS)      value = d * sc_j * (u - C)       (j: sub-block of S)
//   SuperMin    (Q2_K Q4_K Q5_K)        value = d * sc_j * u - dmin * m_j
// Unsigned weights meet signed activations in vpdpbusd/vpmaddubsw without sign tricks; the
// offset is paid once per sub-block as C * (sum of the activations there), which the
// activation preparation computes once per call.
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/quants_blocks.h"

// Everything here is TU-local (anonymous namespace): the SIMD files are compiled with AVX flags,
// and an inline function merged across files at link time could run AVX-512 code elsewhere.
namespace camelid::kernels::q {
namespace {

enum class Kind { Block32, Block32Min, Super, SuperMin };

// Scales of one weight block: float d (and dmin, or m for Block32Min); integer sub-block scales
// sc[j] and mins m[j] for the super-block kinds.
struct BlockScales {
  float d = 0, dmin = 0;
  int32_t sc[16] = {}, m[16] = {};
};

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// ggml's 6-bit scale/min packing of Q4_K and Q5_K (12 bytes for 8 pairs).
inline void scale_min_k4(int j, const uint8_t* q, int32_t& sc, int32_t& m) {
  if (j < 4) {
    sc = q[j] & 63, m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Layout<DT>: QB elements per block of BB bytes, sub-blocks of S (NS per block), offset C,
// activation format X; values() writes the QB bytes u in element order, scales() the scales.
template <DType DT>
struct Layout;

template <>
struct Layout<DType::Q4_0> {
  static constexpr Kind kind = Kind::Block32;
  static constexpr int QB = 32, BB = 18, S = 32, NS = 1, C = 8;
  static constexpr DType X = DType::Q8_0;
  static void scales(const uint8_t* b, BlockScales& s) { s.d = f16_to_f32(load_u16(b)); }
  static void values(const uint8_t* b, uint8_t* u) {
    for (int j = 0; j < 16; ++j) u[j] = b[2 + j] & 15, u[j + 16] = b[2 + j] >> 4;
  }
};

template <>
struct Layout<DType::Q4_1> {
  static constexpr Kind kind = Kind::Block32Min;
  static constexpr int QB = 32, BB = 20, S = 32, NS = 1, C = 0;
  static constexpr DType X = DType::Q8_1;
  static void scales(const uint8_t* b, BlockScales& s) {
    s.d = f16_to_f32(load_u16(b)), s.dmin = f16_to_f32(load_u16(b + 2));
  }
  static void values(const uint8_t* b, uint8_t* u) {
    for (int j = 0; j < 16; ++j) u[j] = b[4 + j] & 15, u[j + 16] = b[4 + j] >> 4;
  }
};

// Q5_0 / Q5_1: bit j of the 32-bit qh is the fifth bit of element j.
inline void values_q5(const uint8_t* qh4, const uint8_t* qs, uint8_t* u) {
  const uint32_t qh = load_u32(qh4);
  for (int j = 0; j < 16; ++j) {
    u[j] = uint8_t((qs[j] & 15) | ((qh >> j) & 1) << 4);
    u[j + 16] = uint8_t((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
  }
}

template <>
struct Layout<DType::Q5_0> {
  static constexpr Kind kind = Kind::Block32;
  static constexpr int QB = 32, BB = 22, S = 32, NS = 1, C = 16;
  static constexpr DType X = DType::Q8_0;
  static void scales(const uint8_t* b, BlockScales& s) { s.d = f16_to_f32(load_u16(b)); }
  static void values(const uint8_t* b, uint8_t* u) { values_q5(b + 2, b + 6, u); }
};

template <>
struct Layout<DType::Q5_1> {
  static constexpr Kind kind = Kind::Block32Min;
  static constexpr int QB = 32, BB = 24, S = 32, NS = 1, C = 0;
  static constexpr DType X = DType::Q8_1;
  static void scales(const uint8_t* b, BlockScales& s) {
    s.d = f16_to_f32(load_u16(b)), s.dmin = f16_to_f32(load_u16(b + 2));
  }
  static void values(const uint8_t* b, uint8_t* u) { values_q5(b + 4, b + 8, u); }
};

template <>
struct Layout<DType::Q8_0> {
  static constexpr Kind kind = Kind::Block32;
  static constexpr int QB = 32, BB = 34, S = 32, NS = 1, C = 128;
  static constexpr DType X = DType::Q8_0;
  static void scales(const uint8_t* b, BlockScales& s) { s.d = f16_to_f32(load_u16(b)); }
  static void values(const uint8_t* b, uint8_t* u) {
    for (int j = 0; j < 32; ++j) u[j] = uint8_t(b[2 + j] ^ 0x80);  // int8 + 128
  }
};

template <>
struct Layout<DType::IQ4_NL> {
  static constexpr Kind kind = Kind::Block32;
  static constexpr int QB = 32, BB = 18, S = 32, NS = 1, C = 128;
  static constexpr DType X = DType::Q8_0;
  static void scales(const uint8_t* b, BlockScales& s) { s.d = f16_to_f32(load_u16(b)); }
  static void values(const uint8_t* b, uint8_t* u) {
    for (int j = 0; j < 16; ++j) {
      u[j] = uint8_t(quants::kValuesIQ4NL[b[2 + j] & 15] + 128);
      u[j + 16] = uint8_t(quants::kValuesIQ4NL[b[2 + j] >> 4] + 128);
    }
  }
};

template <>
struct Layout<DType::Q2_K> {
  static constexpr Kind kind = Kind::SuperMin;
  static constexpr int QB = 256, BB = 84, S = 16, NS = 16, C = 0;
  static constexpr DType X = DType::Q8_K;
  // scales[16] (scale | min << 4) qs[64] d dmin; element 128n + 32j + l is bits 2j..2j+1 of qs[32n + l].
  static void scales(const uint8_t* b, BlockScales& s) {
    s.d = f16_to_f32(load_u16(b + 80)), s.dmin = f16_to_f32(load_u16(b + 82));
    for (int j = 0; j < 16; ++j) s.sc[j] = b[j] & 15, s.m[j] = b[j] >> 4;
  }
  static void values(const uint8_t* b, uint8_t* u) {
    for (int e = 0; e < 256; ++e) u[e] = (b[16 + (e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
  }
};

template <>
struct Layout<DType::Q3_K> {
  static constexpr Kind kind = Kind::Super;
  static constexpr int QB = 256, BB = 110, S = 16, NS = 16, C = 4;
  static constexpr DType X = DType::Q8_K;
  // hmask[32] qs[64] scales[12] d. Element 128n + 32j + l: low bits 2j..2j+1 of qs[32n + l],
  // value minus 4 unless bit 4n + j of hmask[l] is set; so u = low bits + 4 * that bit. Scales:
  // 6 bits each (low 4 in bytes 0..7, high 2 in bytes 8..11), minus 32.
  static void scales(const uint8_t* b, BlockScales& s) {
    s.d = f16_to_f32(load_u16(b + 108));
    const uint8_t* sc = b + 96;
    for (int j = 0; j < 16; ++j) {
      const int lo = j < 8 ? sc[j] & 15 : sc[j - 8] >> 4;
      s.sc[j] = (lo | ((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
    }
  }
  static void values(const uint8_t* b, uint8_t* u) {
    for (int e = 0; e < 256; ++e) {
      const int n = e / 128, j = (e % 128) / 32, l = e % 32;
      const int low = (b[32 + n * 32 + l] >> (2 * j)) & 3, high = (b[l] >> (4 * n + j)) & 1;
      u[e] = uint8_t(low | high << 2);
    }
  }
};

template <>
struct Layout<DType::Q4_K> {
  static constexpr Kind kind = Kind::SuperMin;
  static constexpr int QB = 256, BB = 144, S = 32, NS = 8, C = 0;
  static constexpr DType X = DType::Q8_K;
  // d dmin scales[12] qs[128]; element 64i + l (l < 32) is the low nibble of qs[32i + l],
  // element 64i + 32 + l the high one.
  static void scales(const uint8_t* b, BlockScales& s) {
    s.d = f16_to_f32(load_u16(b)), s.dmin = f16_to_f32(load_u16(b + 2));
    for (int j = 0; j < 8; ++j) scale_min_k4(j, b + 4, s.sc[j], s.m[j]);
  }
  static void values(const uint8_t* b, uint8_t* u) {
    for (int e = 0; e < 256; ++e) u[e] = (b[16 + (e / 64) * 32 + e % 32] >> (4 * ((e % 64) / 32))) & 15;
  }
};

template <>
struct Layout<DType::Q5_K> {
  static constexpr Kind kind = Kind::SuperMin;
  static constexpr int QB = 256, BB = 176, S = 32, NS = 8, C = 0;
  static constexpr DType X = DType::Q8_K;
  // d dmin scales[12] qh[32] qs[128]: as Q4_K, plus bit e / 32 of qh[e % 32] as the fifth bit.
  static void scales(const uint8_t* b, BlockScales& s) { Layout<DType::Q4_K>::scales(b, s); }
  static void values(const uint8_t* b, uint8_t* u) {
    for (int e = 0; e < 256; ++e)
      u[e] = uint8_t(((b[48 + (e / 64) * 32 + e % 32] >> (4 * ((e % 64) / 32))) & 15) | ((b[16 + e % 32] >> (e / 32)) & 1) << 4);
  }
};

template <>
struct Layout<DType::Q6_K> {
  static constexpr Kind kind = Kind::Super;
  static constexpr int QB = 256, BB = 210, S = 16, NS = 16, C = 32;
  static constexpr DType X = DType::Q8_K;
  // ql[128] qh[64] scales[16] (int8) d. In half n, element 128n + 32q + l takes the low (q < 2)
  // or high nibble of ql[64n + 32(q & 1) + l] and bits 2q..2q+1 of qh[32n + l].
  static void scales(const uint8_t* b, BlockScales& s) {
    s.d = f16_to_f32(load_u16(b + 208));
    for (int j = 0; j < 16; ++j) s.sc[j] = int8_t(b[192 + j]);
  }
  static void values(const uint8_t* b, uint8_t* u) {
    for (int e = 0; e < 256; ++e) {
      const int n = e / 128, q = (e % 128) / 32, l = e % 32;
      const int low = (b[64 * n + 32 * (q & 1) + l] >> (4 * (q >> 1))) & 15;
      const int high = (b[128 + 32 * n + l] >> (2 * q)) & 3;
      u[e] = uint8_t(low | high << 4);
    }
  }
};

template <>
struct Layout<DType::IQ4_XS> {
  static constexpr Kind kind = Kind::Super;
  static constexpr int QB = 256, BB = 136, S = 32, NS = 8, C = 128;
  static constexpr DType X = DType::Q8_K;
  // d scales_h(u16) scales_l[4] qs[128]; sub-block j: 6-bit scale minus 32, 16 bytes of
  // nibbles (low: elements 0..15, high: 16..31) indexing the codebook.
  static void scales(const uint8_t* b, BlockScales& s) {
    s.d = f16_to_f32(load_u16(b));
    const int sh = load_u16(b + 2);
    for (int j = 0; j < 8; ++j) s.sc[j] = (((b[4 + j / 2] >> (4 * (j % 2))) & 15) | ((sh >> (2 * j)) & 3) << 4) - 32;
  }
  static void values(const uint8_t* b, uint8_t* u) {
    for (int j = 0; j < 8; ++j)
      for (int l = 0; l < 16; ++l) {
        const uint8_t q = b[8 + 16 * j + l];
        u[32 * j + l] = uint8_t(quants::kValuesIQ4NL[q & 15] + 128);
        u[32 * j + l + 16] = uint8_t(quants::kValuesIQ4NL[q >> 4] + 128);
      }
  }
};

// Calls f.template operator()<DT>() for the weight type t; false if t has no integer kernel.
template <class F>
bool with_layout(DType t, F&& f) {
  switch (t) {
    case DType::Q4_0: f.template operator()<DType::Q4_0>(); return true;
    case DType::Q4_1: f.template operator()<DType::Q4_1>(); return true;
    case DType::Q5_0: f.template operator()<DType::Q5_0>(); return true;
    case DType::Q5_1: f.template operator()<DType::Q5_1>(); return true;
    case DType::Q8_0: f.template operator()<DType::Q8_0>(); return true;
    case DType::IQ4_NL: f.template operator()<DType::IQ4_NL>(); return true;
    case DType::Q2_K: f.template operator()<DType::Q2_K>(); return true;
    case DType::Q3_K: f.template operator()<DType::Q3_K>(); return true;
    case DType::Q4_K: f.template operator()<DType::Q4_K>(); return true;
    case DType::Q5_K: f.template operator()<DType::Q5_K>(); return true;
    case DType::Q6_K: f.template operator()<DType::Q6_K>(); return true;
    case DType::IQ4_XS: f.template operator()<DType::IQ4_XS>(); return true;
    default: return false;
  }
}

}  // namespace
}  // namespace camelid::kernels::q
