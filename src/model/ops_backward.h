#pragma once
// The backward of each forward op of the Llama block (model/ops.h, kernels::matmul) and the
// training-only causal attention. Each takes the gradient of the op's output and what the forward
// kept, and writes (or, for weights, accumulates) the gradients of its inputs. All f32.
#include <cstddef>
#include <vector>

#include "core/tensor.h"

namespace camelid::ops {

// ---- matmul: Y[T, O] = X[T, K] · W[O, K]^T ----
// The forward product for training: f32 W through kernels::gemm (on a transposed copy of W: many
// rows of X per step make the outer-product kernel ~1.5x faster than the dot-product one, and the
// copy is small beside 2·T·O·K operations); other dtypes (a frozen base) through kernels::matmul.
void matmul_train(const float* X, int T, const Tensor& W, float* Y);
// dX[T, K] = dY[T, O] · W (W of any dtype camelid reads: widened/dequantized, then the f32 kernel).
void matmul_dx(const float* dY, int T, const Tensor& W, float* dX);
// dW[O, K] += dY^T · X (f32 gradient of a weight stored [O, K]).
void matmul_dw(const float* dY, const float* X, int T, int O, int K, float* dW);

// ---- rmsnorm: y = w * x * r, r = 1 / sqrt(mean(x^2) + eps) ----
// rinv receives r per row (kept by the forward for the backward).
void rmsnorm_save(float* y, float* rinv, const float* x, const float* w, int rows, int n, double eps);
// dx = (or +=, when accumulate) the input gradient; dw += the weight gradient (if dw).
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rinv,
                      int rows, int n, bool accumulate);

// ---- rope: a rotation per pair, so its backward is the rotation by the opposite angle ----
void rope_backward(float* dx, int rows, int n_heads, int head_dim, const int* pos, const std::vector<float>& inv_freq,
                   bool interleaved);

// ---- swiglu: act = silu(gate) * up ----
// dgate, dup from dact (dgate may alias dact).
void silu_mul_backward(float* dgate, float* dup, const float* dact, const float* gate, const float* up, size_t n);

// ---- causal attention for training: B rows of T tokens, positions 0..T-1 ----
// q [B*T, Hq*hd], k/v [B*T, Hkv*hd] (after rope), out [B*T, Hq*hd]; probs [B, Hq, T, T] keeps the
// softmax for the backward (the upper triangle is 0).
void attention_forward(const float* q, const float* k, const float* v, float* out, float* probs, int B, int T,
                       int n_heads, int n_kv_heads, int hd);
// dq = ..., dk/dv = ... (written, not accumulated) from dout.
void attention_backward(const float* dout, const float* q, const float* k, const float* v, const float* probs,
                        float* dq, float* dk, float* dv, int B, int T, int n_heads, int n_kv_heads, int hd);

}  // namespace camelid::ops
