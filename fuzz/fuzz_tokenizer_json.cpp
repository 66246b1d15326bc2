// tokenizer.json text from a stranger: parse it (typed fields, id ranges, nesting limits), build
// the tokenizer (merges, added tokens, regexes), then encode and decode with it. Any input must
// end in a working tokenizer or a camelid::Error.
// (No fixture seeds: the real tokenizer.json files are megabytes, too slow per execution; the
// seeds in fuzz/corpus/fuzz_tokenizer_json/ are small generated ones.)
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "tokenizer/loaders.h"
#include "tokenizer_exercise.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const camelid::Tokenizer tok(camelid::parse_tokenizer_json(text, "fuzz/tokenizer.json"));
    camelid::fuzz::exercise(tok, text);
  } catch (const camelid::Error&) {
  }
  return 0;
}
