#pragma once
// The quantized matmul shared by every instruction set: activations prepared once per call, and
// the fixed sequence of operations that makes results independent of batch, tiling, threads and
// instruction set.
//
// For output (t, o) and weight blocks b = 0, 1, ... in order (qlayout.h gives the integers):
//   Block32:    S = sum_k u_k x_k - C * xsum_b                      (exact int32)
//               acc = fma(float(S), d_b * dx_b, acc)
//   Block32Min: as Block32 (C = 0), then acc = fma(m_b, dx_b * float(xsum_b), acc)
//   Super:      S = sum_j sc_j * (sum_{k in j} u_k x_k - C * xsum_j)
//               acc = fma(float(S), d_b * dx_b, acc)
//   SuperMin:   S as Super (C = 0), M = sum_j m_j * xsum_j,
//               acc = fma(float(S), d_b * dx_b, acc); acc = fma(float(M), -(dmin_b * dx_b), acc)
// with acc = +0 first and Y[t, o] = acc. x: the int8 activations; dx: their block scale. The
// integer sums are exact however a kernel splits them (lanes, tiles, VNNI or not), so only the
// float steps above touch rounding, and every kernel performs exactly these, in this order.
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/kernels.h"

namespace camelid::kernels {

// Activations rounded to a weight type's activation format plus, per row and weight block, what
// the kernels need from them: the scale as f32, the C-weighted sub-block sums, the sub-block sums
// in int16 pairs (SuperMin) and dx * xsum (Block32Min).
struct QuantizedActivations {
  DType wtype = DType::Q8_0;  // the weight type these were prepared for
  DType type = DType::Q8_0;   // Q8_0, Q8_1 or Q8_K
  int T = 0, K = 0, nb = 0;   // nb: weight blocks per row
  uint64_t id = 0;            // unique per prepare_activations call: keys per-thread caches of derived data
  const uint8_t* q = nullptr;  // T rows of `type` blocks
  size_t row_bytes = 0;
  const float* dx = nullptr;       // [T][nb]
  const int32_t* bias = nullptr;   // [T][nb][NS]: -C * sub-block sum (null when C = 0)
  const int32_t* pairs = nullptr;  // [T][nb][NS/2]: sub-block sums 2j, 2j+1 as int16 lo, hi (SuperMin)
  const float* sx = nullptr;       // [T][nb]: dx * block sum (Block32Min)
  // Where the pointers above point (owned here).
  std::vector<float> dx_buf, sx_buf;
  std::vector<int32_t> bias_buf, pairs_buf;
};

// Fills a's tables for weight type `wtype` from T rows of quantized activations at q.
void prepare_activations(DType wtype, const void* q, int T, int K, QuantizedActivations& a);

// Activation rounding as ggml's quantize_row_q8_0_ref / q8_1_ref / q8_K_ref (scalar).
void quantize_row_q8_0(const float* x, uint8_t* y, int K);
void quantize_row_q8_1(const float* x, uint8_t* y, int K);
void quantize_row_q8_K(const float* x, uint8_t* y, int K);
void quantize_activations_scalar(DType type, const float* X, int T, int K, void* out);

// Per instruction set (kernels/cpu/qmatmul_*.cpp); VNNI variants where the CPU has them.
namespace portable {
void qmatmul_rows(const QuantizedActivations& x, const Tensor& W, float* Y, int o0, int o1);
}
namespace avx2 {
void quantize_activations(DType type, const float* X, int T, int K, void* out);
void qmatmul_rows(const QuantizedActivations& x, const Tensor& W, float* Y, int o0, int o1);
void qgemv_panel(const QuantizedActivations& x, const Tensor& W, float* Y, int o0, int o1);
}
namespace avxvnni {
void qmatmul_rows(const QuantizedActivations& x, const Tensor& W, float* Y, int o0, int o1);
}
namespace avx512 {
void quantize_activations(DType type, const float* X, int T, int K, void* out);
void qmatmul_rows(const QuantizedActivations& x, const Tensor& W, float* Y, int o0, int o1);
}
namespace avx512vnni {
void qmatmul_rows(const QuantizedActivations& x, const Tensor& W, float* Y, int o0, int o1);
}

}  // namespace camelid::kernels
