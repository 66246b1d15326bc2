#pragma once
// A non-owning view of a 1-D or 2-D weight in its stored dtype (row-major; a quantized row is
// whole blocks). The bytes belong to a memory map or a buffer owned by the model that holds the
// view. An interleaved weight (kernels::interleave) holds the same bytes regrouped in panels of
// 8 rows for the decode kernels: only the kernels read it, and row() does not apply.
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace camelid {

struct Tensor {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0;  // a vector has rows == 1
  int interleaved = 0;         // 0: row-major; 8: panels of 8 rows (kernels/cpu/qpanel.h)

  int64_t numel() const { return rows * cols; }
  size_t row_nbytes() const { return row_bytes(dtype, cols); }  // cols is a multiple of the block
  size_t nbytes() const { return size_t(rows) * row_nbytes(); }
  const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + size_t(r) * row_nbytes(); }
  bool empty() const { return data == nullptr; }
};

}  // namespace camelid
