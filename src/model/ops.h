#pragma once
// Element-wise and per-row operations of the Llama block (f32). Matmuls are in kernels/.
#include <cstddef>
#include <vector>

namespace camelid::ops {

// out[t] = x[t] / rms(x[t]) * w, rows of length n.
void rmsnorm(float* out, const float* x, const float* w, int rows, int n, double eps);

// Rotates pairs (i, i + head_dim/2) of each head of x (rows of n_heads * head_dim) by
// pos * inv_freq[i] (the rotate-half convention of Hugging Face checkpoints), or with
// `interleaved` pairs (2i, 2i+1) (Meta's layout, which GGUF files keep). Attention only sees
// q.k, so either layout gives the same model as long as q and k use the same one.
void rope(float* x, int rows, int n_heads, int head_dim, const int* pos,
          const std::vector<float>& inv_freq, bool interleaved = false);

// a = silu(a) * b, element-wise.
void silu_mul(float* a, const float* b, size_t n);

// y += x
void add(float* y, const float* x, size_t n);

}  // namespace camelid::ops
