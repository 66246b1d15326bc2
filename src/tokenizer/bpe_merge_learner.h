#pragma once
// The merge loop of BPE training, shared by both tokenizer kinds: words are sequences of symbol
// ids (-1: a character without a token, never merged) with counts; the adjacent pair with the
// highest total count is merged into a new symbol until the vocabulary reaches its target.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace camelid {

struct MergeCorpus {
  std::vector<std::vector<int>> words;
  std::vector<int64_t> counts;  // occurrences of each word
};

struct MergeVocab {
  std::vector<std::string> texts;               // id -> text; merged tokens are appended
  std::unordered_map<std::string, int> ids;     // text -> id
  std::unordered_set<std::string> reserved;     // texts a merge must not produce (specials, byte tokens)
  int add(const std::string& text);             // id of text, appended if new
};

// Merges (left id, right id) in rank order. Stops when vocab.texts.size() reaches `target` or no
// pair is left. Ties between equal counts go to the pair whose left text, then right text, sorts
// first bytewise, so the result depends on the corpus only. A merge whose text is already a
// token (made from another pair) is recorded but adds no token. `progress(vocab size)` is called
// now and then. The corpus's words are merged in place.
std::vector<std::pair<int, int>> learn_bpe_merges(MergeCorpus& corpus, MergeVocab& vocab, size_t target,
                                                  const std::function<void(size_t)>& progress = {});

}  // namespace camelid
