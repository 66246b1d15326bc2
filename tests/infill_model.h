#pragma once
// A Code Llama-shaped model for the infill tests (CLI and server).
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "fixtures.h"
#include "model_files.h"

namespace camelid::test {

inline const std::string kSp = "\xE2\x96\x81";  // ▁

// A Code Llama-shaped model: Llama 2's tokenizer.json grown to 32016 tokens as Code Llama's is,
// ▁<PRE> ▁<SUF> ▁<MID> ▁<EOT> at 32007..32010, and random weights of that vocabulary.
inline std::string code_llama_like(const TempDir& dir) {
  std::ifstream in(fixture("models/tiny-llama2/tokenizer.json"));
  nlohmann::json t = nlohmann::json::parse(in);
  for (int id = 32000; id < 32016; ++id) {
    std::string name = "<FILL_" + std::to_string(id) + ">";
    if (id >= 32007 && id <= 32010) name = kSp + (const char*[]){"<PRE>", "<SUF>", "<MID>", "<EOT>"}[id - 32007];
    t["model"]["vocab"][name] = id;
    t["added_tokens"].push_back({{"id", id}, {"content", name}, {"single_word", false}, {"lstrip", false},
                                 {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  RandomModelSpec spec = small_spec();
  spec.config.vocab_size = 32016, spec.config.max_seq_len = 128;
  write_random_model(dir.str(), spec);
  spit(dir / "tokenizer.json", t.dump());
  return dir.str();
}

}  // namespace camelid::test
