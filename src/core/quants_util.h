#pragma once
// Helpers shared by the quantization files (quants_legacy.cpp, quants_k*.cpp, quants_iq4.cpp):
// block access without alignment assumptions and ggml's exact rounding steps. The files are
// compiled with -ffp-contract=off: every float operation must round exactly where ggml's C code
// (built for baseline x86-64, without FMA) rounds, or quantized bytes and dequantized bits drift.
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/quants_blocks.h"

namespace camelid::quants::detail {

// Block i of an array of blocks that may sit at any byte address (GGUF data, mmap).
template <class Block>
inline Block load_block(const void* src, int64_t i) {
  Block b;
  std::memcpy(&b, static_cast<const uint8_t*>(src) + i * int64_t(sizeof(Block)), sizeof(Block));
  return b;
}

template <class Block>
inline void store_block(void* dst, int64_t i, const Block& b) {
  std::memcpy(static_cast<uint8_t*>(dst) + i * int64_t(sizeof(Block)), &b, sizeof(Block));
}

// ggml's nearest_int: adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits, so
// ties go to even (2.5 -> 2, 3.5 -> 4), unlike lround. Exact for |f| <= 2^22; beyond that ggml
// gets garbage and so do we, bit for bit.
inline int nearest_int(float f) {
  const float biased = f + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &biased, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

// C's float -> int conversion (truncation toward zero) as x86's cvttss2si does it: out of range
// and NaN give INT32_MIN. ggml's (int8_t)(x) / (uint8_t)(x) casts compile to that plus taking
// the low byte; this keeps such inputs defined (no UB) and equal to ggml on x86.
inline int32_t trunc_to_int(float f) {
  return (f > -2147483904.f && f < 2147483648.f) ? int32_t(f) : INT32_MIN;
}

// The 6-bit scale and min of sub-block j (0..7) of Q4_K / Q5_K, packed in 12 bytes: sub-blocks
// 0..3 in the low 6 bits of bytes 0..3 (scale) and 4..7 (min); sub-blocks 4..7 split into a
// nibble in bytes 8..11 and two high bits in the top of bytes 0..7.
inline void k4_scale_min(int j, const uint8_t* packed, uint8_t& scale, uint8_t& min) {
  if (j < 4) {
    scale = packed[j] & 63;
    min = packed[j + 4] & 63;
  } else {
    scale = uint8_t((packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4));
    min = uint8_t((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
  }
}

// Below this magnitude ggml treats a group as all zero.
inline constexpr float kGroupMaxEps = 1e-15f;

}  // namespace camelid::quants::detail
