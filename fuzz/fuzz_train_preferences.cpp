// Preference JSONL as a stranger may hand it over (camelid dpo / train-reward --data), in the
// pre-tokenized form (no tokenizer: the text forms end in an Error naming the line). Any input
// must give pairs whose every id is < vocab and whose responses are not empty, or a camelid::Error.
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "train/pref_batch.h"
#include "train/preference_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace camelid::train;
  const int vocab = 64;
  try {
    const auto pairs = parse_preferences(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.jsonl",
                                         PreferenceEncoder{}, vocab);
    for (const PreferencePair& p : pairs) {
      if (p.prompt.empty() || p.chosen.empty() || p.rejected.empty()) __builtin_trap();
      for (const auto* v : {&p.prompt, &p.chosen, &p.rejected})
        for (int id : *v)
          if (id < 0 || id >= vocab) __builtin_trap();
    }
    if (pairs.size() < 64 && pairs.front().prompt.size() + pairs.front().chosen.size() < 4096) {
      const PairRows r = pack_pairs(pairs, {0}, true);
      if (r.B != 2 || r.tokens.size() != size_t(r.B) * size_t(r.T)) __builtin_trap();
    }
  } catch (const camelid::Error&) {
  }
  return 0;
}
