#include "model/ops.h"

#include <cmath>

namespace camelid::ops {

void rmsnorm(float* out, const float* x, const float* w, int rows, int n, double eps) {
#pragma omp parallel for if (rows > 8)
  for (int t = 0; t < rows; ++t) {
    const float* xr = x + size_t(t) * n;
    float* o = out + size_t(t) * n;
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += double(xr[i]) * xr[i];
    const float scale = float(1.0 / std::sqrt(ss / n + eps));
    for (int i = 0; i < n; ++i) o[i] = w[i] * (xr[i] * scale);
  }
}

void rope(float* x, int rows, int n_heads, int head_dim, const int* pos,
          const std::vector<float>& inv_freq, bool interleaved) {
  const int half = head_dim / 2;
#pragma omp parallel for if (rows > 8)
  for (int t = 0; t < rows; ++t) {
    // The angle is rounded to f32 before cos/sin, as the reference implementation does.
    std::vector<float> c(half), s(half);
    for (int i = 0; i < half; ++i) {
      const float angle = float(pos[t]) * inv_freq[i];
      c[i] = float(std::cos(double(angle)));
      s[i] = float(std::sin(double(angle)));
    }
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (size_t(t) * n_heads + h) * head_dim;
      if (interleaved) {  // pair i is (2i, 2i+1)
        for (int i = 0; i < half; ++i) {
          const float a = v[2 * i], b = v[2 * i + 1];
          v[2 * i] = a * c[i] - b * s[i];
          v[2 * i + 1] = b * c[i] + a * s[i];
        }
        continue;
      }
      for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

void silu_mul(float* a, const float* b, size_t n) {
#pragma omp parallel for if (n > 8192)  // exp makes even one decode row's worth worth splitting
  for (size_t i = 0; i < n; ++i) a[i] = a[i] / (1.f + std::exp(-a[i])) * b[i];
}

void add(float* y, const float* x, size_t n) {
#pragma omp parallel for if (n > 65536)
  for (size_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace camelid::ops
