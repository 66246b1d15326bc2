// tokenizer.model bytes from a stranger (SentencePiece protobuf, read by hand): varints, lengths,
// piece types, scores and ids are all hostile. Any input must end in a working tokenizer or a
// camelid::Error. (The Llama 2 tokenizer.model, 500 KB, would make every execution slow: the
// seeds in fuzz/corpus/fuzz_tokenizer_model/ are small generated models.)
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "tokenizer/loaders.h"
#include "tokenizer_exercise.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const camelid::Tokenizer tok(camelid::parse_sentencepiece_model(data, size, "fuzz/tokenizer.model"));
    camelid::fuzz::exercise(tok, std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const camelid::Error&) {
  }
  return 0;
}
