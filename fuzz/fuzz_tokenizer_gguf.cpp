// GGUF bytes from a stranger: parse them (the reader's own checks), build the tokenizer from their
// tokenizer.* metadata (types, id ranges, array lengths, merges), then encode and decode with it,
// and read the end-of-turn ids and the chat template. Any input must end in a working tokenizer or
// a camelid::Error.
// (No fixture seeds: the fixture GGUF files are 13 to 24 MB of weights, too slow per execution;
// the seeds in fuzz/corpus/fuzz_tokenizer_gguf/ are small generated tokenizer-only files.)
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/gguf.h"
#include "tokenizer/loaders.h"
#include "tokenizer_exercise.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = camelid::gguf::File::parse(data, size, "fuzz/model.gguf");
    std::string text = "Hello <|eot_id|> world </s>";
    try {
      camelid::end_of_turn_ids_from_gguf(*f);
      text += camelid::chat_template_from_gguf(*f);
    } catch (const camelid::Error&) {
    }
    const camelid::Tokenizer tok(camelid::tokenizer_spec_from_gguf(*f));
    camelid::fuzz::exercise(tok, text);
  } catch (const camelid::Error&) {
  }
  return 0;
}
