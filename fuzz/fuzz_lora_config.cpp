// adapter_config.json (a PEFT LoRA adapter's config) as a stranger may write it: JSON (nesting
// limit, duplicate keys), peft_type, rank limits, target_modules, the features camelid refuses.
// Any input must end in a config or a camelid::Error, and an accepted config must survive the
// round trip through the JSON camelid writes.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "model/lora_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const camelid::LoraConfig c = camelid::parse_lora_config(text, "adapter_config.json");
    const camelid::LoraConfig back = camelid::parse_lora_config(camelid::lora_config_json(c), "round trip");
    if (back.r != c.r || back.targets != c.targets || back.use_rslora != c.use_rslora) __builtin_trap();
    if (!(c.scale() == c.scale())) __builtin_trap();
  } catch (const camelid::Error&) {
  }
  return 0;
}
