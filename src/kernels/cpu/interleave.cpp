// Row-major quantized weights to the panel layout of qpanel.h and back (scalar: done once at
// load, or on a few rows for the kernels without a panel path).
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/qpanel.h"
#include "kernels/kernels.h"

namespace camelid::kernels {

namespace {
// One field's units, rows 0..7 in turn <-> the 8 rows' blocks (a fixed-size copy per unit: the
// read-back runs for every batch of more than 4 rows, so it must not call memcpy per unit).
template <int U>
void convert_field(int units, size_t row_bytes, uint8_t* rb, uint8_t*& pb, bool to_panel) {
  for (int u = 0; u < units; ++u)
    for (int r = 0; r < panel::kRows; ++r) {
      uint8_t* b = rb + size_t(r) * row_bytes + size_t(u) * U;
      if (to_panel) std::memcpy(pb, b, U);
      else std::memcpy(b, pb, U);
      pb += U;
    }
}

// Panel p's blocks <-> rows 8p .. 8p+7 (to_panel: rows -> panel). Block b of row r lies at
// rows + r * row_bytes + b * BB; panel block b at pan + b * 8 * BB.
void convert_panel(const panel::PanelLayout& L, size_t BB, size_t nb, size_t row_bytes, uint8_t* rows, uint8_t* pan,
                   bool to_panel) {
  for (size_t b = 0; b < nb; ++b) {
    uint8_t* pb = pan + b * panel::kRows * BB;
    for (int i = 0; i < L.n; ++i) {
      const panel::Field& f = L.f[i];
      uint8_t* rb = rows + b * BB + size_t(f.offset);
      if (f.unit == 4) convert_field<4>(f.bytes / 4, row_bytes, rb, pb, to_panel);
      else if (f.unit == 2) convert_field<2>(f.bytes / 2, row_bytes, rb, pb, to_panel);
      else convert_field<1>(f.bytes, row_bytes, rb, pb, to_panel);
    }
  }
}
}  // namespace

Tensor interleave(const Tensor& W, void* dst) {
  const panel::PanelLayout L = panel::layout(W.dtype);
  if (L.n == 0 || W.interleaved || W.rows % panel::kRows != 0)
    fail("interleave: a ", dtype_name(W.dtype), " [", W.rows, ", ", W.cols, "] weight has no panel layout");
  const size_t rb = W.row_nbytes(), BB = size_t(dtype_info(W.dtype).block_bytes), nb = rb / BB;
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t p = 0; p < W.rows / panel::kRows; ++p)
    convert_panel(L, BB, nb, rb, const_cast<uint8_t*>(W.row(p * panel::kRows)),
                  static_cast<uint8_t*>(dst) + size_t(p) * panel::kRows * rb, true);
  Tensor out = W;
  out.data = dst, out.interleaved = panel::kRows;
  return out;
}

void deinterleave_rows(const Tensor& W, int64_t r0, int64_t r1, void* dst) {
  const panel::PanelLayout L = panel::layout(W.dtype);
  if (W.interleaved != panel::kRows || L.n == 0 || r0 % panel::kRows || (r1 % panel::kRows && r1 != W.rows) || r0 > r1 || r1 > W.rows)
    fail("deinterleave_rows: rows [", r0, ", ", r1, ") of a ", dtype_name(W.dtype), " weight are not whole panels");
  const size_t rb = W.row_nbytes(), BB = size_t(dtype_info(W.dtype).block_bytes), nb = rb / BB;
  const uint8_t* src = static_cast<const uint8_t*>(W.data);
  for (int64_t p = r0 / panel::kRows; p < (r1 + panel::kRows - 1) / panel::kRows; ++p)
    convert_panel(L, BB, nb, rb, static_cast<uint8_t*>(dst) + size_t(p * panel::kRows - r0) * rb,
                  const_cast<uint8_t*>(src + size_t(p) * panel::kRows * rb), false);
}

}  // namespace camelid::kernels
