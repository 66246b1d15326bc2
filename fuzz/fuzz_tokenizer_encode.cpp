// Request text and token ids from strangers, with the two real fixture tokenizers (Llama 2
// SentencePiece-style from tokenizer.json and from tokenizer.model, Llama 3 byte-level), loaded
// once. The input is encoded with and without special-token parsing and in segments, decoded and
// stream-decoded; plain text must round-trip. The input read as 32-bit ids is decoded too: ids
// outside the vocabulary must be an Error, the others must give valid UTF-8.
// seeds: tokenizers/corpus.json
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "fixtures.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

using camelid::Tokenizer;

const std::vector<std::unique_ptr<Tokenizer>>& tokenizers() {
  static const auto all = [] {
    std::vector<std::unique_ptr<Tokenizer>> v;
    for (const char* p : {"tokenizers/llama2", "tokenizers/llama2/tokenizer.model", "tokenizers/llama3"})
      v.push_back(Tokenizer::load(camelid::test::fixture(p)));
    return v;
  }();
  return all;
}

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_tokenizer_encode: %s\n", what);
  __builtin_trap();
}

std::string stream(const Tokenizer& tok, const std::vector<int>& ids, bool skip_special) {
  camelid::StreamDecoder dec(tok, skip_special);
  std::string out;
  for (int id : ids) out += dec.push(id);
  return out + dec.flush();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Long texts find nothing short ones do not (the tests time megabytes): keep executions fast.
  size = std::min<size_t>(size, 2048);
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string clean = camelid::utf8::sanitize(text);
  for (const auto& tok : tokenizers()) {
    const bool byte_level = tok->spec().kind == camelid::TokenizerSpec::Kind::ByteLevelBpe;
    // Plain text round-trips (SentencePiece reads "▁" back as a space) and streams alike.
    const std::vector<int> plain = tok->encode(text, false, false);
    std::string want = clean;
    if (!byte_level)
      for (size_t at = 0; (at = want.find("\xE2\x96\x81", at)) != std::string::npos;) want.replace(at, 3, " ");
    check(tok->decode(plain) == want, "plain text does not round-trip");
    check(stream(*tok, plain, false) == tok->decode(plain), "streamed text differs from decode()");
    check(tok->encode(clean, false, false) == plain, "invalid UTF-8 is not encoded as its replacement");

    const std::vector<int> special = tok->encode(text, true, true);
    check(camelid::utf8::is_valid(tok->decode(special)), "decode gave invalid UTF-8");
    check(camelid::utf8::is_valid(stream(*tok, special, true)), "stream gave invalid UTF-8");
    const size_t half = size / 2;
    tok->encode_segments({{text.substr(0, half), true}, {text.substr(half), false}}, true);
    if (!tok->contains_special_text(text))
      check(tok->encode(text, false, true) == plain, "text without special tokens encodes differently with parsing on");

    // The bytes as ids: raw (mostly out of range) and folded into the vocabulary.
    std::vector<int> ids(size / 4);
    if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);
    bool in_range = true;
    for (int id : ids) in_range = in_range && id >= 0 && id < tok->vocab_size();
    try {
      tok->decode(ids);
      check(in_range, "an id outside the vocabulary decoded");
    } catch (const camelid::Error&) {
      check(!in_range, "ids inside the vocabulary failed to decode");
    }
    for (int& id : ids) id = int(uint32_t(id) % uint32_t(tok->vocab_size()));
    check(camelid::utf8::is_valid(tok->decode(ids, false)), "decode gave invalid UTF-8");
    check(camelid::utf8::is_valid(tok->decode(ids, true, true)), "decode gave invalid UTF-8");
    check(camelid::utf8::is_valid(stream(*tok, ids, false)), "stream gave invalid UTF-8");
  }
  return 0;
}
