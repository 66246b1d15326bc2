// llama2.c checkpoints as a stranger may write them: the 7 header fields (each range-checked),
// the size they imply (64-bit, overflow-checked, equal to the file's), then the weight views,
// NaN/Inf scan and q/k row permutation. Any input must end in a model or a camelid::Error.
// Seeds (fuzz/corpus/fuzz_llama2c/): tiny tied and untied checkpoints.
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "model/weights.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A map is page-aligned; the loader wants 4-byte alignment, which libFuzzer does not promise.
  std::vector<uint32_t> buf((size + 3) / 4);
  if (size) std::memcpy(buf.data(), data, size);
  try {
    camelid::load_llama2c_memory(reinterpret_cast<const uint8_t*>(buf.data()), size, "fuzz.bin");
  } catch (const camelid::Error&) {
  }
  return 0;
}
