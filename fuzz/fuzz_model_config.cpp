// config.json as a stranger may write it: JSON (nesting limit, duplicate keys), field types and
// ranges, rope_scaling; then what is computed from an accepted config (RoPE frequencies, the
// config echoed as JSON). Any input must end in a config or a camelid::Error.
// seeds: models/tiny-llama2/config.json models/tiny-llama3/config.json
#include <cstdint>
#include <string>

#include "core/error.h"
#include "model/config.h"
#include <nlohmann/json.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const camelid::ModelConfig c = camelid::parse_hf_config(text, "config.json");
    const auto freqs = c.rope_inv_freq();
    if (freqs.size() != size_t(c.head_dim / 2)) __builtin_trap();
    (void)c.to_json().dump();
  } catch (const camelid::Error&) {
  }
  return 0;
}
