#include "model/ops_backward.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "kernels/kernels.h"
#include "model/ops.h"

namespace camelid::ops {

namespace {

// out[c, r] = in[r, c] for an [R, C] matrix, in cache-sized tiles.
void transpose(const float* in, int R, int C, float* out) {
  constexpr int kTile = 32;
#pragma omp parallel for collapse(2) if (size_t(R) * C > 65536)
  for (int r0 = 0; r0 < R; r0 += kTile)
    for (int c0 = 0; c0 < C; c0 += kTile)
      for (int r = r0; r < std::min(R, r0 + kTile); ++r)
        for (int c = c0; c < std::min(C, c0 + kTile); ++c) out[size_t(c) * R + r] = in[size_t(r) * C + c];
}

std::vector<float>& scratch(int i) {
  static thread_local std::vector<float> bufs[3];
  return bufs[i];
}

}  // namespace

// Both products reuse the forward's f32 kernel (Y = X · W^T) on transposed operands: the
// transposes move O(T·K + O·K) floats for 2·T·O·K multiply-adds.
void matmul_dx(const float* dY, int T, const Tensor& W, float* dX) {
  const int O = int(W.rows), K = int(W.cols);
  std::vector<float>& w = scratch(0);
  w.resize(size_t(O) * K);
  if (W.dtype == DType::F32) {
    transpose(static_cast<const float*>(W.data), O, K, w.data());
  } else {  // widen/dequantize row by row, then transpose
    std::vector<float>& rows = scratch(1);
    rows.resize(size_t(O) * K);
#pragma omp parallel for if (O > 64)
    for (int o = 0; o < O; ++o) to_f32(W.dtype, W.row(o), &rows[size_t(o) * K], size_t(K));
    transpose(rows.data(), O, K, w.data());
  }
  kernels::matmul(dY, T, Tensor{w.data(), DType::F32, K, O}, dX);
}

void matmul_dw(const float* dY, const float* X, int T, int O, int K, float* dW) {
  std::vector<float>&dyt = scratch(0), &xt = scratch(1), &g = scratch(2);
  dyt.resize(size_t(O) * T), xt.resize(size_t(K) * T), g.resize(size_t(O) * K);
  transpose(dY, T, O, dyt.data());
  transpose(X, T, K, xt.data());
  kernels::matmul(dyt.data(), O, Tensor{xt.data(), DType::F32, K, T}, g.data());
  add(dW, g.data(), g.size());
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

void attention_forward(const float* q, const float* k, const float* v, float* out, float* probs, int B, int T,
                       int n_heads, int n_kv_heads, int hd) {
  const int group = n_heads / n_kv_heads, Q = n_heads * hd, KV = n_kv_heads * hd;
  const float scale = 1.f / std::sqrt(float(hd));
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < n_heads; ++h) {
      const int kvh = h / group;
      float* P = probs + (size_t(b) * n_heads + h) * T * T;
      for (int i = 0; i < T; ++i) {
        const float* qi = q + size_t(b * T + i) * Q + h * hd;
        float* p = P + size_t(i) * T;
        float mx = -INFINITY;
        for (int j = 0; j <= i; ++j) {
          const float* kj = k + size_t(b * T + j) * KV + kvh * hd;
          float s = 0;
          for (int d = 0; d < hd; ++d) s += qi[d] * kj[d];
          p[j] = s * scale;
          mx = std::max(mx, p[j]);
        }
        float sum = 0;
        for (int j = 0; j <= i; ++j) sum += (p[j] = std::exp(p[j] - mx));
        const float inv = 1.f / sum;
        for (int j = 0; j <= i; ++j) p[j] *= inv;
        std::fill(p + i + 1, p + T, 0.f);
        float* o = out + size_t(b * T + i) * Q + h * hd;
        std::fill(o, o + hd, 0.f);
        for (int j = 0; j <= i; ++j) {
          const float* vj = v + size_t(b * T + j) * KV + kvh * hd;
          for (int d = 0; d < hd; ++d) o[d] += p[j] * vj[d];
        }
      }
    }
}

// With S = scale·q·k^T, P = softmax(S), out = P·v:
//   dP = dout·v^T, dS = P ⊙ (dP - rowsum(P ⊙ dP)), dq = scale·dS·k, dk = scale·dS^T·q, dv = P^T·dout.
// One task per (row, kv head): its query heads' dk/dv contributions land in that head's slice only.
void attention_backward(const float* dout, const float* q, const float* k, const float* v, const float* probs,
                        float* dq, float* dk, float* dv, int B, int T, int n_heads, int n_kv_heads, int hd) {
  const int group = n_heads / n_kv_heads, Q = n_heads * hd, KV = n_kv_heads * hd;
  const float scale = 1.f / std::sqrt(float(hd));
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int b = 0; b < B; ++b)
    for (int kvh = 0; kvh < n_kv_heads; ++kvh) {
      std::vector<float> ds(T);
      for (int j = 0; j < T; ++j) {
        std::fill_n(dk + size_t(b * T + j) * KV + kvh * hd, hd, 0.f);
        std::fill_n(dv + size_t(b * T + j) * KV + kvh * hd, hd, 0.f);
      }
      for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
        const float* P = probs + (size_t(b) * n_heads + h) * T * T;
        for (int i = 0; i < T; ++i) {
          const float* p = P + size_t(i) * T;
          const float *go = dout + size_t(b * T + i) * Q + h * hd, *qi = q + size_t(b * T + i) * Q + h * hd;
          float dot = 0;
          for (int j = 0; j <= i; ++j) {
            const float* vj = v + size_t(b * T + j) * KV + kvh * hd;
            float s = 0;
            for (int d = 0; d < hd; ++d) s += go[d] * vj[d];
            ds[j] = s;
            dot += p[j] * s;
          }
          float* gq = dq + size_t(b * T + i) * Q + h * hd;
          std::fill(gq, gq + hd, 0.f);
          for (int j = 0; j <= i; ++j) {
            const float g = p[j] * (ds[j] - dot) * scale;
            const float* kj = k + size_t(b * T + j) * KV + kvh * hd;
            float *gk = dk + size_t(b * T + j) * KV + kvh * hd, *gv = dv + size_t(b * T + j) * KV + kvh * hd;
            for (int d = 0; d < hd; ++d) {
              gq[d] += g * kj[d];
              gk[d] += g * qi[d];
              gv[d] += p[j] * go[d];
            }
          }
        }
      }
    }
}

}  // namespace camelid::ops
