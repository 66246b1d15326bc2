// Quantized matmul with AVX-VNNI (256-bit vpdpbusd); chosen at run time where the CPU has it.
#include "kernels/cpu/qgemm_simd.h"
#include "kernels/cpu/qgemv_simd.h"
#include "kernels/cpu/qvec.h"

namespace camelid::kernels::avxvnni {

void qmatmul_rows(const QuantizedActivations& x, const Tensor& W, float* Y, int o0, int o1) {
  qsimd::qmatmul_rows_decode256<qsimd::V256Vnni>(x, W, Y, o0, o1);
}

}  // namespace camelid::kernels::avxvnni
