// Placeholder until the SIMD kernels land: same as portable, compiled with avx2 flags.
#include "kernels/kernels.h"

namespace camelid::kernels {
const KernelTable& table_avx2() { return table_portable(); }
}  // namespace camelid::kernels
