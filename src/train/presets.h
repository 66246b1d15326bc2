#pragma once
// Model shapes for training from scratch (`camelid train --preset NAME`).
#include <string>

#include "model/config.h"

namespace camelid::train {

// "tiny": dim 64, 2 layers, 4 heads (2 kv), hidden 176, vocab 512, context 256 (tests, smoke runs).
// "25m": dim 512, 6 layers, 8 heads, hidden 1376, vocab 8192, context 256 (~27M parameters untied;
//        the size of the default model and of the throughput benchmark).
// Throws Error naming the preset when unknown.
ModelConfig train_preset(const std::string& name);

}  // namespace camelid::train
