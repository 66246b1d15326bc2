// The 32-element block types: Q4_0, Q4_1, Q5_0, Q5_1 (4/5-bit with an f16 scale, and a min for
// the _1 variants), Q8_0 and Q8_1 (8-bit, the activation formats of the 32-block dot products).
// Same float operations in the same order as ggml's dequantize_row_* / quantize_row_*_ref.
// Nibble layout: byte j holds element j (low nibble) and element j + 16 (high nibble); the 5th
// bit of element j is bit j of the 32-bit qh.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "core/quants.h"
#include "core/quants_util.h"

namespace camelid::quants {

using detail::load_block;
using detail::store_block;
using detail::trunc_to_int;

namespace {

// The value of largest magnitude in a block, with its sign (the first one on ties), and that
// magnitude: the symmetric types map it to the most negative level.
struct SignedMax {
  float amax = 0.0f, max = 0.0f;
};
SignedMax signed_max(const float* x, int n) {
  SignedMax m;
  for (int j = 0; j < n; ++j)
    if (m.amax < std::fabs(x[j])) {
      m.amax = std::fabs(x[j]);
      m.max = x[j];
    }
  return m;
}

struct MinMax {
  float min = FLT_MAX, max = -FLT_MAX;
};
MinMax min_max(const float* x, int n) {
  MinMax m;
  for (int j = 0; j < n; ++j) {
    if (x[j] < m.min) m.min = x[j];
    if (x[j] > m.max) m.max = x[j];
  }
  return m;
}

// ggml's MAX(amax, |x|): a NaN propagates (std::fmax would drop it).
float abs_max(const float* x, int n) {
  float amax = 0.0f;
  for (int j = 0; j < n; ++j) amax = amax > std::fabs(x[j]) ? amax : std::fabs(x[j]);
  return amax;
}

// 5th bits of a Q5 block: bit j of qh for element j.
uint32_t load_qh(const uint8_t (&qh)[4]) {
  uint32_t v;
  std::memcpy(&v, qh, 4);
  return v;
}

}  // namespace

// ---- Q4_0: x = d * (q - 8)

void dequantize_q4_0(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK4_0; ++i, dst += QK4_0) {
    const auto b = load_block<BlockQ4_0>(src, i);
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      dst[j] = float((b.qs[j] & 0xF) - 8) * d;
      dst[j + QK4_0 / 2] = float((b.qs[j] >> 4) - 8) * d;
    }
  }
}

void quantize_q4_0(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK4_0; ++i, src += QK4_0) {
    const SignedMax m = signed_max(src, QK4_0);
    const float d = m.max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ4_0 b;
    b.d = f32_to_f16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      // +8.5 then truncation: round half up around the zero point 8; the max itself lands on 0.
      const int q0 = std::min(15, int(int8_t(trunc_to_int(src[j] * id + 8.5f))));
      const int q1 = std::min(15, int(int8_t(trunc_to_int(src[j + QK4_0 / 2] * id + 8.5f))));
      b.qs[j] = uint8_t(q0 | (q1 << 4));
    }
    store_block(dst, i, b);
  }
}

// ---- Q4_1: x = d * q + m

void dequantize_q4_1(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK4_1; ++i, dst += QK4_1) {
    const auto b = load_block<BlockQ4_1>(src, i);
    const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      dst[j] = float(b.qs[j] & 0xF) * d + m;
      dst[j + QK4_1 / 2] = float(b.qs[j] >> 4) * d + m;
    }
  }
}

void quantize_q4_1(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK4_1; ++i, src += QK4_1) {
    const MinMax m = min_max(src, QK4_1);
    const float d = (m.max - m.min) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ4_1 b;
    b.d = f32_to_f16(d);
    b.m = f32_to_f16(m.min);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      const int q0 = std::min(15, int(int8_t(trunc_to_int((src[j] - m.min) * id + 0.5f))));
      const int q1 = std::min(15, int(int8_t(trunc_to_int((src[j + QK4_1 / 2] - m.min) * id + 0.5f))));
      b.qs[j] = uint8_t(q0 | (q1 << 4));
    }
    store_block(dst, i, b);
  }
}

// ---- Q5_0: x = d * (q - 16), q 5 bits

void dequantize_q5_0(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK5_0; ++i, dst += QK5_0) {
    const auto b = load_block<BlockQ5_0>(src, i);
    const float d = f16_to_f32(b.d);
    const uint32_t qh = load_qh(b.qh);
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int h0 = int((qh >> j) & 1) << 4, h1 = int((qh >> (j + 16)) & 1) << 4;
      dst[j] = float(((b.qs[j] & 0xF) | h0) - 16) * d;
      dst[j + QK5_0 / 2] = float(((b.qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

void quantize_q5_0(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK5_0; ++i, src += QK5_0) {
    const SignedMax m = signed_max(src, QK5_0);
    const float d = m.max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ5_0 b;
    b.d = f32_to_f16(d);
    uint32_t qh = 0;
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int q0 = std::min(31, int(int8_t(trunc_to_int(src[j] * id + 16.5f))));
      const int q1 = std::min(31, int(int8_t(trunc_to_int(src[j + QK5_0 / 2] * id + 16.5f))));
      b.qs[j] = uint8_t((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh |= uint32_t((q0 >> 4) & 1) << j;
      qh |= uint32_t((q1 >> 4) & 1) << (j + QK5_0 / 2);
    }
    std::memcpy(b.qh, &qh, 4);
    store_block(dst, i, b);
  }
}

// ---- Q5_1: x = d * q + m, q 5 bits

void dequantize_q5_1(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK5_1; ++i, dst += QK5_1) {
    const auto b = load_block<BlockQ5_1>(src, i);
    const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
    const uint32_t qh = load_qh(b.qh);
    for (int j = 0; j < QK5_1 / 2; ++j) {
      const int h0 = int((qh >> j) & 1) << 4, h1 = int((qh >> (j + 16)) & 1) << 4;
      dst[j] = float((b.qs[j] & 0xF) | h0) * d + m;
      dst[j + QK5_1 / 2] = float((b.qs[j] >> 4) | h1) * d + m;
    }
  }
}

void quantize_q5_1(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK5_1; ++i, src += QK5_1) {
    const MinMax m = min_max(src, QK5_1);
    const float d = (m.max - m.min) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ5_1 b;
    b.d = f32_to_f16(d);
    b.m = f32_to_f16(m.min);
    uint32_t qh = 0;
    for (int j = 0; j < QK5_1 / 2; ++j) {
      // No clamp here (ggml has none): (x - min) * id stays within [0, 31] up to rounding.
      const int q0 = uint8_t(trunc_to_int((src[j] - m.min) * id + 0.5f));
      const int q1 = uint8_t(trunc_to_int((src[j + QK5_1 / 2] - m.min) * id + 0.5f));
      b.qs[j] = uint8_t((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh |= uint32_t((q0 >> 4) & 1) << j;
      qh |= uint32_t((q1 >> 4) & 1) << (j + QK5_1 / 2);
    }
    std::memcpy(b.qh, &qh, 4);
    store_block(dst, i, b);
  }
}

// ---- Q8_0: x = d * q, d = amax / 127

void dequantize_q8_0(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK8_0; ++i, dst += QK8_0) {
    const auto b = load_block<BlockQ8_0>(src, i);
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < QK8_0; ++j) dst[j] = float(b.qs[j]) * d;
  }
}

void quantize_q8_0(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK8_0; ++i, src += QK8_0) {
    const float d = abs_max(src, QK8_0) / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ8_0 b;
    b.d = f32_to_f16(d);
    // roundf: halves away from zero (not nearest_int's ties-to-even).
    for (int j = 0; j < QK8_0; ++j) b.qs[j] = int8_t(trunc_to_int(std::round(src[j] * id)));
    store_block(dst, i, b);
  }
}

// ---- Q8_1: Q8_0 plus s = d * sum(q) (f16), which the dot product with Q4_1/Q5_1 mins needs

void dequantize_q8_1(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK8_1; ++i, dst += QK8_1) {
    const auto b = load_block<BlockQ8_1>(src, i);
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < QK8_1; ++j) dst[j] = float(b.qs[j]) * d;
  }
}

void quantize_q8_1(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK8_1; ++i, src += QK8_1) {
    const float d = abs_max(src, QK8_1) / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ8_1 b;
    b.d = f32_to_f16(d);
    int sum = 0;
    for (int j = 0; j < QK8_1; ++j) {
      b.qs[j] = int8_t(trunc_to_int(std::round(src[j] * id)));
      sum += b.qs[j];
    }
    b.s = f32_to_f16(float(sum) * d);
    store_block(dst, i, b);
  }
}

}  // namespace camelid::quants
