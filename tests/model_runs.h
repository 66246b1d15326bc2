#pragma once
// Models run in-process by the tests: the tiny Llama 2 fixture (loaded once per test process and
// shared), and the logits of a whole sequence from any model path.
#include <memory>
#include <string>
#include <vector>

#include "fixtures.h"
#include "model/kv_cache.h"
#include "model/llama.h"
#include "model/weights.h"

namespace camelid::test {

inline Llama& tiny_llama2() {
  static Llama m(std::shared_ptr<const ModelWeights>(load_model(fixture("models/tiny-llama2"))));
  return m;
}

// Logits of every position of `ids`, [ids.size(), vocab], in one forward pass.
inline std::vector<float> logits_of(const std::string& model, const std::vector<int>& ids) {
  Llama m(std::shared_ptr<ModelWeights>(load_model(model)));
  KVCache cache(m.config(), 1, int(ids.size()));
  Batch b;
  for (size_t i = 0; i < ids.size(); ++i) b.add(ids[i], int(i), 0, true);
  std::vector<float> out;
  m.forward(b, cache, out);
  return out;
}

}  // namespace camelid::test
