// Temporary: replaced by the quantization files.
#include "core/error.h"
#include "core/quants.h"
namespace camelid::quants {
#define STUB(T) \
  void dequantize_##T(const void*, float*, int64_t) { fail("dequantize " #T ": not implemented"); } \
  void quantize_##T(const float*, void*, int64_t) { fail("quantize " #T ": not implemented"); }
STUB(q4_0) STUB(q4_1) STUB(q5_0) STUB(q5_1) STUB(q8_0) STUB(q8_1) STUB(q2_k) STUB(q3_k) STUB(q4_k) STUB(q5_k)
STUB(q6_k) STUB(q8_k) STUB(iq4_nl) STUB(iq4_xs)
}
