// The k-quants: 256-element super-blocks of 16- or 32-element sub-blocks whose scales (and
// mins) are themselves quantized against one f16 super-block scale. Q8_K is the activation
// format of their dot products (float scale, plus bsums for the mins' correction).
// Same float operations in the same order as ggml's dequantize_row_* / quantize_row_*_ref.
//
// Element layout shared by Q2_K, Q3_K (2-bit part) and Q6_K: within each half of 128 elements,
// byte l of the half's 32 bytes holds elements l, l + 32, l + 64, l + 96 at bits 0, 2, 4, 6.
#include <algorithm>
#include <cmath>

#include "core/quants.h"
#include "core/quants_k_fit.h"
#include "core/quants_util.h"

namespace camelid::quants {

using detail::fit_affine;
using detail::fit_symmetric;
using detail::fit_symmetric_refined;
using detail::k4_scale_min;
using detail::load_block;
using detail::nearest_int;
using detail::store_block;

namespace {

// Packs 256 2-bit levels (each < 4) in the shared layout above.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < QK_K; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

// The 6-bit biased scale (0..63) of sub-block j of Q3_K: the low nibble is in byte j % 8 (low
// nibble for j < 8, high for j >= 8), the high 2 bits in byte 8 + j % 4 at bit 2 * (j / 4).
int q3k_scale(const uint8_t* scales, int j) {
  const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
  return low | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
}

// The 4 scales of a sub-block's 6-bit scale/min pairs (Q4_K, Q5_K), in k4_scale_min's layout.
void pack_k4_scales(const uint8_t* ls, const uint8_t* lm, uint8_t* packed) {
  for (int j = 0; j < QK_K / 32; ++j) {
    if (j < 4) {
      packed[j] = ls[j];
      packed[j + 4] = lm[j];
    } else {
      packed[j + 4] = uint8_t((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      packed[j - 4] |= uint8_t((ls[j] >> 4) << 6);
      packed[j] |= uint8_t((lm[j] >> 4) << 6);
    }
  }
}

// Q4_K / Q5_K share everything but the level count: 8 sub-blocks of 32 fitted affinely with
// weights av + |x| (av = rms of the sub-block), scales and mins rounded to 6 bits against d and
// dmin, then every value re-rounded against its rounded scale and min. Writes d, dmin, the
// packed scales and the 256 levels.
struct K4Fit {
  uint16_t d, dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t L[QK_K];
};
K4Fit fit_k4(const float* x, int nmax, float rmin, int nstep) {
  K4Fit f{};
  float scales[QK_K / 32], mins[QK_K / 32], weights[32];
  float max_scale = 0, max_min = 0;  // scales are positive: the min has been taken out
  for (int j = 0; j < QK_K / 32; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_affine(32, nmax, xs, weights, f.L + 32 * j, &mins[j], rmin, 0.1f, nstep, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[QK_K / 32], lm[QK_K / 32];
  for (int j = 0; j < QK_K / 32; ++j) {
    // ggml converts to uint8_t before clamping (a negative level wraps, then clamps to 63).
    ls[j] = std::min<uint8_t>(63, uint8_t(nearest_int(inv_scale * scales[j])));
    lm[j] = std::min<uint8_t>(63, uint8_t(nearest_int(inv_min * mins[j])));
  }
  pack_k4_scales(ls, lm, f.scales);
  f.d = f32_to_f16(max_scale / 63.f);
  f.dmin = f32_to_f16(max_min / 63.f);
  for (int j = 0; j < QK_K / 32; ++j) {
    uint8_t sc, m;
    k4_scale_min(j, f.scales, sc, m);
    const float d = f16_to_f32(f.d) * float(sc);
    if (d == 0.0f) continue;
    const float dm = f16_to_f32(f.dmin) * float(m);
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / d);
      f.L[32 * j + ii] = uint8_t(std::max(0, std::min(nmax, l)));
    }
  }
  return f;
}

}  // namespace

// ---- Q2_K: x = d * sc * q - dmin * m, 16 sub-blocks of 16, 4-bit sc and m, 2-bit q

void dequantize_q2_k(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto b = load_block<BlockQ2_K>(src, i);
    const float d = f16_to_f32(b.d), min = f16_to_f32(b.dmin);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = b.qs + 32 * half;
      for (int j = 0; j < 4; ++j) {
        const int shift = 2 * j;
        for (int part = 0; part < 2; ++part) {  // two sub-blocks of 16 per 32 bytes
          const uint8_t sc = b.scales[8 * half + 2 * j + part];
          const float dl = d * float(sc & 0xF), ml = min * float(sc >> 4);
          for (int l = 0; l < 16; ++l) *dst++ = dl * float((q[16 * part + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void quantize_q2_k(const float* src, void* dst, int64_t n) {
  constexpr float kQ4Scale = 15.f;
  for (int64_t i = 0; i < n / QK_K; ++i, src += QK_K) {
    const float* x = src;
    uint8_t L[QK_K];
    float scales[QK_K / 16], mins[QK_K / 16], weights[16];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = fit_affine(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    BlockQ2_K b{};
    if (max_scale > 0) {
      const float iscale = kQ4Scale / max_scale;
      for (int j = 0; j < QK_K / 16; ++j) b.scales[j] = uint8_t(nearest_int(iscale * scales[j]));
      b.d = f32_to_f16(max_scale / kQ4Scale);
    } else {
      b.d = f32_to_f16(0.f);
    }
    if (max_min > 0) {
      const float iscale = kQ4Scale / max_min;
      for (int j = 0; j < QK_K / 16; ++j) b.scales[j] = uint8_t(b.scales[j] | (nearest_int(iscale * mins[j]) << 4));
      b.dmin = f32_to_f16(max_min / kQ4Scale);
    } else {
      b.dmin = f32_to_f16(0.f);
    }
    // Re-round every value against its sub-block's rounded scale and min.
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = f16_to_f32(b.d) * float(b.scales[j] & 0xF);
      if (d == 0.0f) continue;
      const float dm = f16_to_f32(b.dmin) * float(b.scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        const int l = nearest_int((x[16 * j + ii] + dm) / d);
        L[16 * j + ii] = uint8_t(std::max(0, std::min(3, l)));
      }
    }
    pack_2bit(L, b.qs);
    store_block(dst, i, b);
  }
}

// ---- Q3_K: x = d * (sc - 32) * (q - 4), 16 sub-blocks of 16, 6-bit sc, q = 2 bits + hmask bit

void dequantize_q3_k(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto b = load_block<BlockQ3_K>(src, i);
    const float d_all = f16_to_f32(b.d);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = b.qs + 32 * half;
      for (int j = 0; j < 4; ++j) {
        const int shift = 2 * j;
        const uint8_t hbit = uint8_t(1 << (4 * half + j));  // hmask bit of these 32 elements
        for (int part = 0; part < 2; ++part) {
          const float dl = d_all * float(q3k_scale(b.scales, 8 * half + 2 * j + part) - 32);
          for (int l = 16 * part; l < 16 * part + 16; ++l) {
            const int level = ((q[l] >> shift) & 3) - ((b.hmask[l] & hbit) ? 0 : 4);
            *dst++ = dl * float(level);
          }
        }
      }
    }
  }
}

void quantize_q3_k(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, src += QK_K) {
    const float* x = src;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    float max_scale = 0, amax = 0;  // the signed scale of largest magnitude
    for (int j = 0; j < QK_K / 16; ++j) {
      scales[j] = fit_symmetric_refined(16, 4, x + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    BlockQ3_K b{};
    if (max_scale != 0.0f) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < QK_K / 16; ++j) {
        int8_t l = int8_t(nearest_int(iscale * scales[j]));
        l = int8_t(std::max<int>(-32, std::min<int>(31, l)) + 32);
        if (j < 8)
          b.scales[j] = uint8_t(l & 0xF);
        else
          b.scales[j - 8] = uint8_t(b.scales[j - 8] | ((l & 0xF) << 4));
        b.scales[8 + j % 4] = uint8_t(b.scales[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
      }
      b.d = f32_to_f16(1 / iscale);
    } else {
      b.d = f32_to_f16(0.f);
    }
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = f16_to_f32(b.d) * float(int8_t(q3k_scale(b.scales, j) - 32));
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = nearest_int(x[16 * j + ii] / d);
        L[16 * j + ii] = int8_t(std::max(-4, std::min(3, l)) + 4);
      }
    }
    // Level bit 2 goes to hmask: element e sets bit e / 32 of byte e % 32.
    uint8_t low[QK_K];
    for (int e = 0; e < QK_K; ++e) {
      if (L[e] > 3) b.hmask[e % 32] = uint8_t(b.hmask[e % 32] | (1 << (e / 32)));
      low[e] = uint8_t(L[e] > 3 ? L[e] - 4 : L[e]);
    }
    pack_2bit(low, b.qs);
    store_block(dst, i, b);
  }
}

// ---- Q4_K: x = d * sc * q - dmin * m, 8 sub-blocks of 32, 6-bit sc and m, 4-bit q

void dequantize_q4_k(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto b = load_block<BlockQ4_K>(src, i);
    const float d = f16_to_f32(b.d), min = f16_to_f32(b.dmin);
    const uint8_t* q = b.qs;
    for (int j = 0; j < QK_K / 64; ++j, q += 32) {  // 32 bytes: sub-block 2j low, 2j+1 high
      uint8_t sc, m;
      k4_scale_min(2 * j, b.scales, sc, m);
      const float d1 = d * float(sc), m1 = min * float(m);
      k4_scale_min(2 * j + 1, b.scales, sc, m);
      const float d2 = d * float(sc), m2 = min * float(m);
      for (int l = 0; l < 32; ++l) *dst++ = d1 * float(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

void quantize_q4_k(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, src += QK_K) {
    const K4Fit f = fit_k4(src, 15, -1.f, 20);
    BlockQ4_K b;
    b.d = f.d;
    b.dmin = f.dmin;
    std::memcpy(b.scales, f.scales, K_SCALE_SIZE);
    for (int j = 0; j < QK_K; j += 64)
      for (int l = 0; l < 32; ++l) b.qs[j / 2 + l] = uint8_t(f.L[j + l] | (f.L[j + l + 32] << 4));
    store_block(dst, i, b);
  }
}

// ---- Q5_K: as Q4_K with 5-bit q; the 5th bits in qh (bit 2j / 2j+1 for sub-blocks 2j / 2j+1)

void dequantize_q5_k(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto b = load_block<BlockQ5_K>(src, i);
    const float d = f16_to_f32(b.d), min = f16_to_f32(b.dmin);
    const uint8_t* ql = b.qs;
    for (int j = 0; j < QK_K / 64; ++j, ql += 32) {
      uint8_t sc, m;
      k4_scale_min(2 * j, b.scales, sc, m);
      const float d1 = d * float(sc), m1 = min * float(m);
      k4_scale_min(2 * j + 1, b.scales, sc, m);
      const float d2 = d * float(sc), m2 = min * float(m);
      const uint8_t u1 = uint8_t(1 << (2 * j)), u2 = uint8_t(2 << (2 * j));
      for (int l = 0; l < 32; ++l) *dst++ = d1 * float((ql[l] & 0xF) + ((b.qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * float((ql[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

void quantize_q5_k(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, src += QK_K) {
    const K4Fit f = fit_k4(src, 31, -0.5f, 15);
    BlockQ5_K b{};
    b.d = f.d;
    b.dmin = f.dmin;
    std::memcpy(b.scales, f.scales, K_SCALE_SIZE);
    for (int j = 0; j < QK_K / 64; ++j) {
      const uint8_t u1 = uint8_t(1 << (2 * j)), u2 = uint8_t(2 << (2 * j));
      for (int l = 0; l < 32; ++l) {
        int l1 = f.L[64 * j + l], l2 = f.L[64 * j + l + 32];
        if (l1 > 15) {
          l1 -= 16;
          b.qh[l] |= u1;
        }
        if (l2 > 15) {
          l2 -= 16;
          b.qh[l] |= u2;
        }
        b.qs[32 * j + l] = uint8_t(l1 | (l2 << 4));
      }
    }
    store_block(dst, i, b);
  }
}

// ---- Q6_K: x = d * sc * (q - 32), 16 sub-blocks of 16, int8 sc, q = 4 bits (ql) + 2 bits (qh)

void dequantize_q6_k(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto b = load_block<BlockQ6_K>(src, i);
    const float d = f16_to_f32(b.d);
    for (int half = 0; half < 2; ++half, dst += 128) {
      const uint8_t* ql = b.ql + 64 * half;
      const uint8_t* qh = b.qh + 32 * half;
      const int8_t* sc = b.scales + 8 * half;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        dst[l] = d * float(sc[is]) * float(q1);
        dst[l + 32] = d * float(sc[is + 2]) * float(q2);
        dst[l + 64] = d * float(sc[is + 4]) * float(q3);
        dst[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

void quantize_q6_k(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, src += QK_K) {
    const float* x = src;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < QK_K / 16; ++ib) {
      scales[ib] = fit_symmetric(16, 32, x + 16 * ib, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    BlockQ6_K b{};
    if (max_abs_scale < detail::kGroupMaxEps) {  // all zero (ggml: d = +0)
      b.d = f32_to_f16(0.f);
      store_block(dst, i, b);
      continue;
    }
    const float iscale = -128.f / max_scale;
    b.d = f32_to_f16(1 / iscale);
    for (int ib = 0; ib < QK_K / 16; ++ib) b.scales[ib] = int8_t(std::min(127, nearest_int(iscale * scales[ib])));
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = f16_to_f32(b.d) * float(b.scales[j]);
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = nearest_int(x[16 * j + ii] / d);
        L[16 * j + ii] = int8_t(std::max(-32, std::min(31, l)) + 32);
      }
    }
    for (int half = 0; half < 2; ++half) {
      const int8_t* Lh = L + 128 * half;
      uint8_t* ql = b.ql + 64 * half;
      uint8_t* qh = b.qh + 32 * half;
      for (int l = 0; l < 32; ++l) {
        ql[l] = uint8_t((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
        ql[l + 32] = uint8_t((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
        qh[l] = uint8_t((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
      }
    }
    store_block(dst, i, b);
  }
}

// ---- Q8_K: x = d * q with a float d = max / -127; bsums[j] = sum of q[16j .. 16j + 15]

void dequantize_q8_k(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto b = load_block<BlockQ8_K>(src, i);
    for (int j = 0; j < QK_K; ++j) *dst++ = b.d * float(b.qs[j]);
  }
}

void quantize_q8_k(const float* src, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, src += QK_K) {
    float max = 0, amax = 0;
    for (int j = 0; j < QK_K; ++j)
      if (std::fabs(src[j]) > amax) {
        amax = std::fabs(src[j]);
        max = src[j];
      }
    BlockQ8_K b{};  // an all-zero block: d, qs and bsums 0 (ggml leaves its bsums unwritten)
    if (amax != 0.0f) {
      // -127 rather than -128 keeps every q in [-127, 127] (ggml: for the IQ2 SIMD paths).
      const float iscale = -127.f / max;
      for (int j = 0; j < QK_K; ++j) b.qs[j] = int8_t(std::min(127, nearest_int(iscale * src[j])));
      for (int j = 0; j < QK_K / 16; ++j) {
        int sum = 0;
        for (int ii = 0; ii < 16; ++ii) sum += b.qs[16 * j + ii];
        b.bsums[j] = int16_t(sum);
      }
      b.d = 1 / iscale;
    }
    store_block(dst, i, b);
  }
}

}  // namespace camelid::quants
