#pragma once
// Row conversions of ggml's block-quantized types, bit-identical to ggml's dequantize_row_* and
// quantize_row_*_ref. n is a multiple of the type's block size. Reached through dtype_info();
// the block layouts are in quants_blocks.h.
#include <cstdint>

namespace camelid::quants {

#define CAMELID_QUANT_TYPE(T)                                   \
  void dequantize_##T(const void* src, float* dst, int64_t n);  \
  void quantize_##T(const float* src, void* dst, int64_t n);

CAMELID_QUANT_TYPE(q4_0)
CAMELID_QUANT_TYPE(q4_1)
CAMELID_QUANT_TYPE(q5_0)
CAMELID_QUANT_TYPE(q5_1)
CAMELID_QUANT_TYPE(q8_0)
CAMELID_QUANT_TYPE(q8_1)
CAMELID_QUANT_TYPE(q2_k)
CAMELID_QUANT_TYPE(q3_k)
CAMELID_QUANT_TYPE(q4_k)
CAMELID_QUANT_TYPE(q5_k)
CAMELID_QUANT_TYPE(q6_k)
CAMELID_QUANT_TYPE(q8_k)
CAMELID_QUANT_TYPE(iq4_nl)
CAMELID_QUANT_TYPE(iq4_xs)

#undef CAMELID_QUANT_TYPE

}  // namespace camelid::quants
