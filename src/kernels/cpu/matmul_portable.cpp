// Reference kernels in plain C++: any CPU, and the baseline the SIMD versions are tested against.
#include <algorithm>
#include <vector>

#include "kernels/cpu/softmax.h"
#include "kernels/kernels.h"
#include "kernels/cpu/qmatmul.h"

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

void attend_(const float* q, const KVRows& k, const KVRows& v, int n, int hd, float scale, float* s, float* out) {
  for (int p = 0; p < n; ++p) {
    const float* kp = k.at(p);
    float d = 0.f;
    for (int i = 0; i < hd; ++i) d += q[i] * kp[i];
    s[p] = d * scale;
  }
  softmax(s, n);
  std::fill_n(out, hd, 0.f);
  for (int p = 0; p < n; ++p)
    for (int i = 0; i < hd; ++i) out[i] += s[p] * v.at(p)[i];
}

// Row by row: the reference for what each row must get, however the rows are grouped.
void attend_rows_(const AttendRow* rows, int nrows, const KVRows& k, const KVRows& v, int hd, float scale, float* s) {
  for (int r = 0; r < nrows; ++r) attend_(rows[r].q, k, v, rows[r].n, hd, scale, s, rows[r].out);
}

constexpr int kGemmMr = 4, kGemmNr = 16;
void gemm_tile(const float* Ap, const float* B, size_t ldb, float* C, size_t ldc, int kc, int mr, bool load_c) {
  float c[kGemmMr][kGemmNr];
  for (int r = 0; r < kGemmMr; ++r)
    for (int j = 0; j < kGemmNr; ++j) c[r][j] = load_c && r < mr ? C[size_t(r) * ldc + j] : 0.f;
  for (int p = 0; p < kc; ++p)
    for (int r = 0; r < kGemmMr; ++r)
      for (int j = 0; j < kGemmNr; ++j) c[r][j] += Ap[p * kGemmMr + r] * B[size_t(p) * ldb + j];
  for (int r = 0; r < mr; ++r)
    for (int j = 0; j < kGemmNr; ++j) C[size_t(r) * ldc + j] = c[r][j];
}

}  // namespace

const KernelTable& table_portable() {
  static const KernelTable t{matmul_rows, attend_rows_, nullptr, nullptr, quantize_activations_scalar, portable::qmatmul_rows, nullptr,
                             gemm_tile, kGemmMr, kGemmNr, to_f32, nullptr, nullptr, nullptr, nullptr};
  return t;
}

}  // namespace camelid::kernels
