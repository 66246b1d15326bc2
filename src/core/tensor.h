#pragma once
// A non-owning view of a 1-D or 2-D weight in its stored dtype (row-major). The bytes belong to a
// memory map or a buffer owned by the model that holds the view.
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace camelid {

struct Tensor {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0;  // a vector has rows == 1

  int64_t numel() const { return rows * cols; }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  const uint8_t* row(int64_t r) const {
    return static_cast<const uint8_t*>(data) + size_t(r * cols) * dtype_size(dtype);
  }
  bool empty() const { return data == nullptr; }
};

}  // namespace camelid
