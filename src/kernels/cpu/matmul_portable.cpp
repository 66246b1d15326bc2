// Reference kernels in plain C++: any CPU, and the baseline the SIMD versions are tested against.
#include <vector>

#include "kernels/kernels.h"

namespace camelid::kernels {
namespace {

void matmul_rows(const float* X, int T, const Tensor& W, float* Y, int o0, int o1) {
  const int n = int(W.cols), O = int(W.rows);
  std::vector<float> w(n);
  for (int o = o0; o < o1; ++o) {
    const float* wr = reinterpret_cast<const float*>(W.row(o));
    if (W.dtype != DType::F32) {
      to_f32(W.dtype, W.row(o), w.data(), n);
      wr = w.data();
    }
    for (int t = 0; t < T; ++t) {
      const float* x = X + size_t(t) * n;
      float s = 0.f;
      for (int i = 0; i < n; ++i) s += x[i] * wr[i];
      Y[size_t(t) * O + o] = s;
    }
  }
}

float dot_(const float* a, const float* b, int n) {
  float s = 0.f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy_(float a, const float* x, float* y, int n) {
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

const KernelTable& table_portable() {
  static const KernelTable t{matmul_rows, dot_, axpy_};
  return t;
}

}  // namespace camelid::kernels
