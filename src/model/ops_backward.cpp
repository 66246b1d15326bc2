#include "model/ops_backward.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "kernels/kernels.h"
#include "model/ops.h"

namespace camelid::ops {

namespace {
std::vector<float>& scratch() {
  static thread_local std::vector<float> buf;
  return buf;
}
}  // namespace

void matmul_train(const float* X, int T, const Tensor& W, float* Y) {
  const int O = int(W.rows), K = int(W.cols);
  if (W.dtype != DType::F32 || T < 64) return kernels::matmul(X, T, W, Y);
  std::vector<float>& wt = scratch();
  wt.resize(size_t(O) * K);
  const float* w = static_cast<const float*>(W.data);
  constexpr int kTile = 32;
#pragma omp parallel for collapse(2) if (size_t(O) * K > 65536)
  for (int o0 = 0; o0 < O; o0 += kTile)
    for (int k0 = 0; k0 < K; k0 += kTile)
      for (int o = o0; o < std::min(O, o0 + kTile); ++o)
        for (int k = k0; k < std::min(K, k0 + kTile); ++k) wt[size_t(k) * O + o] = w[size_t(o) * K + k];
  kernels::gemm(T, O, K, X, size_t(K), 1, wt.data(), size_t(O), Y, size_t(O), false);
}

void matmul_dx(const float* dY, int T, const Tensor& W, float* dX) {
  const int O = int(W.rows), K = int(W.cols);
  const float* w = static_cast<const float*>(W.data);
  if (W.dtype != DType::F32) {  // a frozen base in another format: widen/dequantize it first
    std::vector<float>& buf = scratch();
    buf.resize(size_t(O) * K);
#pragma omp parallel for if (O > 64)
    for (int o = 0; o < O; ++o) to_f32(W.dtype, W.row(o), &buf[size_t(o) * K], size_t(K));
    w = buf.data();
  }
  kernels::gemm(T, K, O, dY, size_t(O), 1, w, size_t(K), dX, size_t(K), false);
}

void matmul_dw(const float* dY, const float* X, int T, int O, int K, float* dW) {
  kernels::gemm(O, K, T, dY, 1, size_t(O), X, size_t(K), dW, size_t(K), true);  // A = dYᵀ
}

void rmsnorm_save(float* y, float* rinv, const float* x, const float* w, int rows, int n, double eps) {
  rmsnorm(y, x, w, rows, n, eps);
#pragma omp parallel for if (rows > 8)
  for (int t = 0; t < rows; ++t) {  // the same r rmsnorm computed
    const float* xr = x + size_t(t) * n;
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += double(xr[i]) * xr[i];
    rinv[t] = float(1.0 / std::sqrt(ss / n + eps));
  }
}

// dy/dx of y_i = w_i x_i r: dx_j = r (w_j dy_j) - x_j r^3 / n · sum_i w_i dy_i x_i.
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rinv,
                      int rows, int n, bool accumulate) {
#pragma omp parallel for if (rows > 8)
  for (int t = 0; t < rows; ++t) {
    const float *xr = x + size_t(t) * n, *g = dy + size_t(t) * n;
    float* o = dx + size_t(t) * n;
    const double r = rinv[t];
    double dot = 0;
    for (int i = 0; i < n; ++i) dot += double(w[i]) * g[i] * xr[i];
    const float a = float(r), b = float(dot * r * r * r / n);
    for (int i = 0; i < n; ++i) {
      const float v = a * w[i] * g[i] - b * xr[i];
      o[i] = accumulate ? o[i] + v : v;
    }
  }
  if (!dw) return;
  // Columns in parallel: each thread owns a slice of dw, rows summed in order.
#pragma omp parallel for if (size_t(rows) * n > 65536)
  for (int i0 = 0; i0 < n; i0 += 64)
    for (int t = 0; t < rows; ++t) {
      const float *xr = x + size_t(t) * n, *g = dy + size_t(t) * n;
      const float r = rinv[t];
      for (int i = i0; i < std::min(n, i0 + 64); ++i) dw[i] += g[i] * xr[i] * r;
    }
}

void rope_backward(float* dx, int rows, int n_heads, int head_dim, const int* pos, const std::vector<float>& inv_freq,
                   bool interleaved) {
  // float(-p) * f == -(float(p) * f) exactly, and cos/sin are even/odd: the inverse rotation.
  std::vector<int> neg(pos, pos + rows);
  for (int& p : neg) p = -p;
  rope(dx, rows, n_heads, head_dim, neg.data(), inv_freq, interleaved);
}

void silu_mul_backward(float* dgate, float* dup, const float* dact, const float* gate, const float* up, size_t n) {
#pragma omp parallel for if (n > 8192)
  for (size_t i = 0; i < n; ++i) {
    const float g = gate[i], s = 1.f / (1.f + std::exp(-g)), d = dact[i];
    dup[i] = d * g * s;
    dgate[i] = d * up[i] * s * (1.f + g * (1.f - s));
  }
}

namespace {
// [T, hd] head slice with rows ld apart -> [hd, T] contiguous.
void head_transposed(const float* x, size_t ld, int T, int hd, float* out) {
  for (int t = 0; t < T; ++t)
    for (int d = 0; d < hd; ++d) out[size_t(d) * T + t] = x[size_t(t) * ld + d];
}
}  // namespace

// Per (row, head): S = scale·Qh·Khᵀ, P = causal softmax(S), Oh = P·Vh, as dense T x T products
// (the masked half is multiplied by zeros: simpler than triangular tiles, and attention is a
// small share of a training step at the sequence lengths trained here).
void attention_forward(const float* q, const float* k, const float* v, float* out, float* probs, int B, int T,
                       int n_heads, int n_kv_heads, int hd) {
  const int group = n_heads / n_kv_heads, Q = n_heads * hd, KV = n_kv_heads * hd;
  const float scale = 1.f / std::sqrt(float(hd));
#pragma omp parallel
  {
    std::vector<float> kt(size_t(hd) * T);
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < n_heads; ++h) {
        const int kvh = h / group;
        const float *qh = q + size_t(b) * T * Q + h * hd, *kh = k + size_t(b) * T * KV + kvh * hd,
                    *vh = v + size_t(b) * T * KV + kvh * hd;
        float* P = probs + (size_t(b) * n_heads + h) * T * T;
        head_transposed(kh, size_t(KV), T, hd, kt.data());
        kernels::gemm(T, T, hd, qh, size_t(Q), 1, kt.data(), size_t(T), P, size_t(T), false);
        for (int i = 0; i < T; ++i) {
          float* p = P + size_t(i) * T;
          float mx = -INFINITY;
          for (int j = 0; j <= i; ++j) mx = std::max(mx, p[j] *= scale);
          float sum = 0;
          for (int j = 0; j <= i; ++j) sum += (p[j] = std::exp(p[j] - mx));
          const float inv = 1.f / sum;
          for (int j = 0; j <= i; ++j) p[j] *= inv;
          std::fill(p + i + 1, p + T, 0.f);
        }
        kernels::gemm(T, hd, T, P, size_t(T), 1, vh, size_t(KV), out + size_t(b) * T * Q + h * hd, size_t(Q), false);
      }
  }
}

// With S = scale·q·kᵀ, P = softmax(S), out = P·v:
//   dP = dout·vᵀ, dS = P ⊙ (dP - rowsum(P ⊙ dP)), dq = scale·dS·k, dk = scale·dSᵀ·q, dv = Pᵀ·dout.
// One task per (row, kv head): its query heads' dk/dv contributions land in that head's slice only.
void attention_backward(const float* dout, const float* q, const float* k, const float* v, const float* probs,
                        float* dq, float* dk, float* dv, int B, int T, int n_heads, int n_kv_heads, int hd) {
  const int group = n_heads / n_kv_heads, Q = n_heads * hd, KV = n_kv_heads * hd;
  const float scale = 1.f / std::sqrt(float(hd));
#pragma omp parallel
  {
    std::vector<float> vt(size_t(hd) * T), ds(size_t(T) * T);
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; ++b)
      for (int kvh = 0; kvh < n_kv_heads; ++kvh) {
        const float *kh = k + size_t(b) * T * KV + kvh * hd, *vh = v + size_t(b) * T * KV + kvh * hd;
        float *dkh = dk + size_t(b) * T * KV + kvh * hd, *dvh = dv + size_t(b) * T * KV + kvh * hd;
        for (int t = 0; t < T; ++t) std::fill_n(dkh + size_t(t) * KV, hd, 0.f), std::fill_n(dvh + size_t(t) * KV, hd, 0.f);
        head_transposed(vh, size_t(KV), T, hd, vt.data());
        for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
          const float* P = probs + (size_t(b) * n_heads + h) * T * T;
          const float *go = dout + size_t(b) * T * Q + h * hd, *qh = q + size_t(b) * T * Q + h * hd;
          kernels::gemm(T, T, hd, go, size_t(Q), 1, vt.data(), size_t(T), ds.data(), size_t(T), false);  // dP
          for (int i = 0; i < T; ++i) {
            const float* p = P + size_t(i) * T;
            float* d = &ds[size_t(i) * T];
            float dot = 0;
            for (int j = 0; j <= i; ++j) dot += p[j] * d[j];
            for (int j = 0; j <= i; ++j) d[j] = p[j] * (d[j] - dot) * scale;
            std::fill(d + i + 1, d + T, 0.f);
          }
          kernels::gemm(T, hd, T, ds.data(), size_t(T), 1, kh, size_t(KV), dq + size_t(b) * T * Q + h * hd, size_t(Q), false);
          kernels::gemm(T, hd, T, ds.data(), 1, size_t(T), qh, size_t(Q), dkh, size_t(KV), true);  // dSᵀ·q
          kernels::gemm(T, hd, T, P, 1, size_t(T), go, size_t(Q), dvh, size_t(KV), true);         // Pᵀ·dout
        }
      }
  }
}

}  // namespace camelid::ops
