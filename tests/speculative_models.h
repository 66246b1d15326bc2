#pragma once
// The models and prompts the speculative-decoding tests share: the target (the fixture Llama 2),
// a random draft with its vocabulary, and a prompt that repeats for prompt lookup.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "fixtures.h"
#include "model/llama.h"
#include "model/random_model.h"
#include "model/weights.h"
#include "model_runs.h"

namespace camelid::test {

inline Llama& target() { return tiny_llama2(); }

// Another model with the target's vocabulary: its guesses are often wrong, so rejections happen.
inline Llama& other_draft() {
  static Llama* m = [] {
    RandomModelSpec spec = random_model_preset("tiny");
    spec.config.vocab_size = target().config().vocab_size;
    const std::string dir = scratch_dir() + "/spec-draft";
    write_random_model(dir, spec);
    auto* llama = new Llama(std::shared_ptr<const ModelWeights>(load_model(dir)));
    std::filesystem::remove_all(dir);
    return llama;
  }();
  return *m;
}

// A prompt that repeats itself, so prompt lookup has n-grams to follow.
inline std::vector<int> repetitive_prompt(int salt) {
  std::vector<int> p = {1};
  for (int rep = 0; rep < 3; ++rep)
    for (int k = 0; k < 7; ++k) p.push_back(300 + 17 * salt + 5 * k);
  return p;
}

}  // namespace camelid::test
