// Quantized matmul and activation rounding with AVX2 (vpmaddubsw); the AVX-VNNI variant is
// qmatmul_avxvnni.cpp.
#include "kernels/cpu/qgemm_simd.h"
#include "kernels/cpu/qgemv_panel_simd.h"
#include "kernels/cpu/qgemv_simd.h"
#include "kernels/cpu/qquant_simd.h"
#include "kernels/cpu/qvec.h"

namespace camelid::kernels::avx2 {

void quantize_activations(DType type, const float* X, int T, int K, void* out) {
  qsimd::quantize_activations_simd<qsimd::F256>(type, X, T, K, out);
}

void qmatmul_rows(const QuantizedActivations& x, const Tensor& W, float* Y, int o0, int o1) {
  qsimd::qmatmul_rows_decode256<qsimd::V256>(x, W, Y, o0, o1);
}

void qgemv_panel(const QuantizedActivations& x, const Tensor& W, float* Y, int o0, int o1) {
  qsimd::qgemv_panel256(x, W, Y, o0, o1);
}

}  // namespace camelid::kernels::avx2
