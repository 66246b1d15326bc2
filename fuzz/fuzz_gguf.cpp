// GGUF files as a stranger may write them: the reader (header, metadata of every type, nested
// arrays, tensor infos, alignment, offsets), the llama.* hyperparameters and tensor checks of
// the loader, then one forward step, which dequantizes rows of every type from hostile bytes.
// Any input must end in a result or a camelid::Error; anything else escapes and crashes.
// Seeds (fuzz/corpus/fuzz_gguf/): tiny models in f32, f16, q8_0, q4_0, q4_k and q6_k, tied and untied.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/gguf.h"
#include "model/llama.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A map is page-aligned; libFuzzer's buffer is not: copy to a 64-byte aligned one.
  std::vector<uint64_t> buf((size + 63) / 8);
  if (size) std::memcpy(buf.data(), data, size);
  const auto* bytes = reinterpret_cast<const uint8_t*>(buf.data());
  try {
    auto f = camelid::gguf::File::parse(bytes, size, "fuzz.gguf");
    for (auto& [k, v] : f->metadata()) (void)camelid::gguf::value_summary(v);
  } catch (const camelid::Error&) {
    return 0;
  }
  try {
    auto w = std::shared_ptr<const camelid::ModelWeights>(camelid::load_gguf_memory(bytes, size, "fuzz.gguf"));
    camelid::Llama m(w);
    camelid::KVCache cache(m.config(), 1, 2);
    camelid::Batch b;
    b.add(0, 0, 0, true);
    std::vector<float> logits;
    if (w->weight_bytes() < (64u << 20)) m.forward(b, cache, logits);
  } catch (const camelid::Error&) {
  }
  return 0;
}
