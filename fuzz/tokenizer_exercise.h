#pragma once
// What the tokenizer fuzz targets do with a tokenizer they managed to build: encode a few texts
// with and without special-token parsing, decode and stream-decode ids. Only camelid::Error may
// leave (the caller catches it); anything else (another exception, a crash) is a finding.
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace camelid::fuzz {

inline void exercise(const Tokenizer& tok, std::string_view extra_text) {
  const std::string texts[] = {
      "Hello world, <s>hi</s> <unk> <|end|> <|eot_id|>\n\n  x",
      "\xE2\x96\x81\xE2\x96\x81 caf\xC3\xA9 \xF0\x9F\xA6\x99 123456 \xFF\xFE",
      std::string(extra_text.substr(0, 256)),
  };
  for (const std::string& t : texts) {
    for (bool special : {false, true}) {
      const std::vector<int> ids = tok.encode(t, true, special);
      tok.decode(ids);
      tok.decode(ids, true, true);
      StreamDecoder dec(tok);
      for (int id : ids) dec.push(id);
      dec.flush();
    }
    tok.contains_special_text(t);
    tok.encode_segments({{t, true}, {t, false}}, true);
  }
  // Every id of a small vocabulary, and the ends of a large one.
  const int n = tok.vocab_size();
  std::vector<int> ids;
  for (int i = 0; i < n && i < 512; ++i) ids.push_back(i);
  for (int i = std::max(512, n - 64); i < n; ++i) ids.push_back(i);
  tok.decode(ids);
  tok.decode(ids, true);
  for (int id : ids) tok.token_text(id), tok.is_special(id);
  try {
    tok.decode({n});
    __builtin_trap();  // an id past the vocabulary must be an Error
  } catch (const Error&) {
  }
}

}  // namespace camelid::fuzz
