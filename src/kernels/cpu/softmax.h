#pragma once
// In-place softmax shared by the attention kernels of every instruction set. Written as plain
// loops of IEEE operations with explicit fma (no a * b + c the compiler could contract one way in
// one build and another way in the next), so each instruction-set file may vectorise them as it
// likes and every build still gets the same bits: an element's exp depends only on that element,
// and the sum has one fixed order (8 lanes of f64, then a fixed tree, then the tail).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace camelid::kernels {

// e^x for x <= 0 (scores minus their max) to about 2 ulp: x = n ln2 + r with |r| <= ln2/2, a
// degree-6 polynomial for e^r, times 2^n. Anything below e^-87.3 (and NaN) gives 0.
static inline float softmax_exp(float x) {
  if (!(x >= -87.3f)) return 0.f;
  const float n = std::nearbyint(x * 1.44269504f);
  float r = std::fma(n, -0.693359375f, x);  // ln 2 in two parts: n * hi is exact
  r = std::fma(n, 2.12194440e-4f, r);
  float p = 1.f / 720;
  p = std::fma(p, r, 1.f / 120);
  p = std::fma(p, r, 1.f / 24);
  p = std::fma(p, r, 1.f / 6);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.f);
  p = std::fma(p, r, 1.f);
  const int32_t bits = (int32_t(n) + 127) << 23;  // 2^n, n in [-126, 0]
  float two_n;
  std::memcpy(&two_n, &bits, 4);
  return p * two_n;
}

// static: each instruction-set file gets its own copy (an inline one could be merged across
// them at link time, running AVX-512 code on a CPU without it).
static inline void softmax(float* x, int n) {
  float mx = x[0];
  for (int i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  for (int i = 0; i < n; ++i) x[i] = softmax_exp(x[i] - mx);
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += double(x[i + j]);
  double sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) sum += double(x[i]);
  const float inv = float(1.0 / sum);
  for (int k = 0; k < n; ++k) x[k] *= inv;
}

}  // namespace camelid::kernels
