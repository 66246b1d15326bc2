#pragma once
// In-place softmax shared by the attention kernels of every instruction set (f32 values, f64 sum).
#include <algorithm>
#include <cmath>

namespace camelid::kernels {

// static: each instruction-set file gets its own copy (an inline one could be merged across
// them at link time, running AVX-512 code on a CPU without it).
static inline void softmax(float* x, int n) {
  float mx = x[0];
  for (int i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace camelid::kernels
