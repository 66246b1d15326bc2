// Quantized matmul with AVX512-VNNI (vpdpbusd); chosen at run time where the CPU has it.
#include "kernels/cpu/qgemm_simd.h"
#include "kernels/cpu/qgemv_avx512.h"
#include "kernels/cpu/qvec.h"

namespace camelid::kernels::avx512vnni {

void qmatmul_rows(const QuantizedActivations& x, const Tensor& W, float* Y, int o0, int o1) {
  qsimd::qmatmul_rows_decode<qsimd::V512Vnni>(x, W, Y, o0, o1);
}

}  // namespace camelid::kernels::avx512vnni
