// safetensors files as a stranger may write them: the header parser and validation (lengths,
// JSON, dtypes, shapes, offsets, exact coverage of the data section), then the Hugging Face
// assembly against a fixed small config (names, layers, shapes, alignment copies, NaN/Inf
// scan). Any input must end in a model or a camelid::Error; anything else escapes and crashes.
// Seeds (fuzz/corpus/fuzz_safetensors/): checkpoints of the config below in F32, BF16 and F16.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "model/weights.h"

namespace {

const std::string kConfig = R"({"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":8,
  "hidden_size":4,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,
  "head_dim":2,"max_position_embeddings":16,"tie_word_embeddings":false,"bos_token_id":1,"eos_token_id":2})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    camelid::load_hf_memory(kConfig, data, size, "fuzz.safetensors");
  } catch (const camelid::Error&) {
  }
  return 0;
}
