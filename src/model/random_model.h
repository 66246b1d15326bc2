#pragma once
// Random Llama checkpoints in Hugging Face layout, for tests and benchmarks of any shape.
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/config.h"
#include "model/safetensors.h"

namespace camelid {

struct RandomModelSpec {
  ModelConfig config;
  DType dtype = DType::F32;
  uint64_t seed = 1234;
};

// Named shapes: "bench-450m", "tiny" (a 2-layer GQA model for tests), "llama2-7b-shape"
// (full-size config, only for gen-random --config-only style checks).
RandomModelSpec random_model_preset(const std::string& name);

// Writes DIR/config.json and DIR/model.safetensors (creating DIR). Weights ~ U(-a, a) with
// a = sqrt(3 / fan_in) so activations keep unit scale through the layers.
void write_random_model(const std::string& dir, const RandomModelSpec& spec);

// The two halves of write_random_model, for tests that alter the checkpoint before writing it:
// DIR/config.json (creating DIR), and the tensors of model.safetensors in file order.
void write_random_config(const std::string& dir, const RandomModelSpec& spec);
std::vector<SafetensorsOut> random_model_tensors(const RandomModelSpec& spec);

}  // namespace camelid
