// Placeholder until the SIMD kernels land: same as portable, compiled with avx512 flags.
#include "kernels/kernels.h"

namespace camelid::kernels {
const KernelTable& table_avx512() { return table_portable(); }
}  // namespace camelid::kernels
