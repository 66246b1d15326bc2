// Quantized matmul and activation rounding with AVX-512 (no VNNI: vpmaddubsw); the VNNI variant
// is qmatmul_avx512vnni.cpp.
#include "kernels/cpu/qgemm_simd.h"
#include "kernels/cpu/qgemv_avx512.h"
#include "kernels/cpu/qquant_simd.h"
#include "kernels/cpu/qvec.h"

namespace camelid::kernels::avx512 {

void quantize_activations(DType type, const float* X, int T, int K, void* out) {
  qsimd::quantize_activations_simd<qsimd::F512>(type, X, T, K, out);
}

void qmatmul_rows(const QuantizedActivations& x, const Tensor& W, float* Y, int o0, int o1) {
  qsimd::qmatmul_rows_decode<qsimd::V512>(x, W, Y, o0, o1);
}

}  // namespace camelid::kernels::avx512
