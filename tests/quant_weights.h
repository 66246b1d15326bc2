#pragma once
// Random quantized weights and activations for the quantized-kernel tests.
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace camelid::testing_data {

// Random blocks: random payload bytes (every pattern is valid) and finite f16 scales of either sign.
struct QWeights {
  std::vector<uint8_t> storage;
  Tensor t;
  QWeights(DType dt, int rows, int cols, int misalign, std::mt19937& rng) {
    const DTypeInfo& info = dtype_info(dt);
    const size_t n = row_bytes(dt, cols) * rows;
    storage.resize(n + misalign);  // ends with the tensor: reads past it are ASan errors
    uint8_t* base = storage.data() + misalign;
    for (size_t i = 0; i < n; ++i) base[i] = uint8_t(rng());
    std::uniform_real_distribution<float> mag(0.002f, 0.05f);
    for (size_t blk = 0; blk < n / info.block_bytes; ++blk)
      for (int s = 0; s < info.n_scales; ++s) {
        const uint16_t v = f32_to_f16(rng() % 2 ? mag(rng) : -mag(rng));
        std::memcpy(base + blk * info.block_bytes + info.scale_offset[s], &v, 2);
      }
    t = Tensor{base, dt, rows, cols};
  }
};

// T rows of K normal values.
inline std::vector<float> random_x(int T, int K, std::mt19937& rng) {
  std::vector<float> x(size_t(T) * K);
  std::normal_distribution<float> d(0.f, 1.f);
  for (auto& v : x) v = d(rng);
  return x;
}

}  // namespace camelid::testing_data
