// IQ4_NL and IQ4_XS: 4-bit indices into a fixed non-linear codebook (kValuesIQ4NL, denser near
// zero). IQ4_NL: blocks of 32 with an f16 scale. IQ4_XS: super-blocks of 256 with an f16 scale
// and 6-bit signed scales per 32 (low nibbles in scales_l, high 2 bits in scales_h).
// Dequantization as ggml's dequantize_row_iq4_*; quantization as ggml's quantize_iq4_nl /
// quantize_iq4_xs without importance weights (what llama-quantize runs; 7 scale trials each
// side, weights x^2). Nibbles: byte j of 16 holds element j (low) and j + 16 (high).
#include <algorithm>
#include <cmath>

#include "core/quants.h"
#include "core/quants_util.h"

namespace camelid::quants {

using detail::load_block;
using detail::nearest_int;
using detail::store_block;

namespace {

constexpr const int8_t* kValues = kValuesIQ4NL;
constexpr int kTrials = 7;  // candidate scales (values[0] + t) / max for t in [-7, 7]

// ggml's best_index_int8: the codebook index nearest to x (the upper one on exact ties), by
// binary search over the sorted values.
int nearest_code(float x) {
  if (x <= kValues[0]) return 0;
  if (x >= kValues[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (x < kValues[mid])
      hi = mid;
    else
      lo = mid;
  }
  return x - kValues[hi - 1] < kValues[hi] - x ? hi - 1 : hi;
}

// Fits the scale of one group of 32 (ggml's quantize_row_iq4_nl_impl inner loop): codes for
// max -> values[0] first, then the best of 15 scale trials by the weighted least-squares
// objective. Writes the codes of the first fit to L (the caller re-derives them from the
// rounded scale) and returns the group's float scale; 0 for an all-zero group (L untouched).
float fit_group(const float* xb, uint8_t* L) {
  float weight[32];
  for (int j = 0; j < 32; ++j) weight[j] = xb[j] * xb[j];
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j) {
    const float ax = std::fabs(xb[j]);
    if (ax > amax) {
      amax = ax;
      max = xb[j];
    }
  }
  if (amax < detail::kGroupMaxEps) return 0;
  float d = -max / float(kValues[0]);
  float id = 1 / d;
  float sumqx = 0, sumq2 = 0;
  for (int j = 0; j < 32; ++j) {
    const int l = nearest_code(id * xb[j]);
    L[j] = uint8_t(l);
    const float q = kValues[l];
    const float w = weight[j];
    sumqx += w * q * xb[j];
    sumq2 += w * q * q;
  }
  d = sumqx / sumq2;
  float best = d * sumqx;
  for (int itry = -kTrials; itry <= kTrials; ++itry) {
    id = float(itry + kValues[0]) / max;
    sumqx = sumq2 = 0;
    for (int j = 0; j < 32; ++j) {
      const float q = kValues[nearest_code(id * xb[j])];
      const float w = weight[j];
      sumqx += w * q * xb[j];
      sumq2 += w * q * q;
    }
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

void pack_nibbles(const uint8_t* L, int n, uint8_t* qs) {
  for (int i = 0; i < n / 32; ++i)
    for (int j = 0; j < 16; ++j) qs[16 * i + j] = uint8_t(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

// The biased 6-bit scale (0..63) of group ib of an IQ4_XS block.
int iq4xs_scale(const BlockIQ4_XS& b, int ib) {
  return ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b.scales_h >> (2 * ib)) & 3) << 4);
}

}  // namespace

// ---- IQ4_NL: x = d * values[q]

void dequantize_iq4_nl(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK4_NL; ++i, dst += QK4_NL) {
    const auto b = load_block<BlockIQ4_NL>(src, i);
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < QK4_NL / 2; ++j) {
      dst[j] = d * float(kValues[b.qs[j] & 0xF]);
      dst[j + QK4_NL / 2] = d * float(kValues[b.qs[j] >> 4]);
    }
  }
}

void quantize_iq4_nl(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK4_NL; ++i, src += QK4_NL) {
    uint8_t L[QK4_NL];
    const float scale = fit_group(src, L);
    BlockIQ4_NL b;
    b.d = f32_to_f16(scale);
    // Codes from the float scale (not the f16-rounded one), as ggml does.
    const float id = scale != 0.0f ? 1 / scale : 0;
    for (int j = 0; j < QK4_NL; ++j) L[j] = uint8_t(nearest_code(id * src[j]));
    pack_nibbles(L, QK4_NL, b.qs);
    store_block(dst, i, b);
  }
}

// ---- IQ4_XS: x = d * (ls - 32) * values[q]

void dequantize_iq4_xs(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto b = load_block<BlockIQ4_XS>(src, i);
    const float d = f16_to_f32(b.d);
    const uint8_t* qs = b.qs;
    for (int ib = 0; ib < QK_K / 32; ++ib, qs += 16, dst += 32) {
      const float dl = d * float(iq4xs_scale(b, ib) - 32);
      for (int j = 0; j < 16; ++j) {
        dst[j] = dl * float(kValues[qs[j] & 0xF]);
        dst[j + 16] = dl * float(kValues[qs[j] >> 4]);
      }
    }
  }
}

void quantize_iq4_xs(const float* src, void* dst, int64_t n) {
  constexpr int kGroups = QK_K / 32;
  for (int64_t i = 0; i < n / QK_K; ++i, src += QK_K) {
    uint8_t L[QK_K];
    float scales[kGroups];
    float max_scale = 0, amax_scale = 0;  // the signed group scale of largest magnitude
    for (int ib = 0; ib < kGroups; ++ib) {
      scales[ib] = fit_group(src + 32 * ib, L + 32 * ib);
      if (std::fabs(scales[ib]) > amax_scale) {
        amax_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    BlockIQ4_XS b{};
    // An all-zero block gives d = -0.0 (f16 0x8000), as in ggml.
    const float d = -max_scale / 32;
    b.d = f32_to_f16(d);
    const float id = d != 0.0f ? 1 / d : 0.f;
    for (int ib = 0; ib < kGroups; ++ib) {
      const int l = std::max(-32, std::min(31, nearest_int(id * scales[ib])));
      // Codes from the group's rounded scale d * l (d itself not rounded to f16).
      const float dl = d * float(l);
      const float idl = dl != 0.0f ? 1 / dl : 0.f;
      const float* xb = src + 32 * ib;
      for (int j = 0; j < 32; ++j) L[32 * ib + j] = uint8_t(nearest_code(idl * xb[j]));
      const int biased = l + 32;
      b.scales_l[ib / 2] = uint8_t(b.scales_l[ib / 2] | ((biased & 0xF) << (4 * (ib % 2))));
      b.scales_h = uint16_t(b.scales_h | ((biased >> 4) << (2 * ib)));
    }
    pack_nibbles(L, QK_K, b.qs);
    store_block(dst, i, b);
  }
}

}  // namespace camelid::quants
