#pragma once
// Finds added tokens (special tokens and the like) in text: at each position the longest token
// whose text starts there. Request text from strangers may be megabytes that nearly match many
// tokens ("<|<|<|..." or, with a hostile tokenizer, "aaaa..." against "aaa...ab"), so the work
// must not grow with the number or the length of the tokens: an Aho-Corasick automaton over the
// *reversed* token texts, run right to left, gives for every position the longest token starting
// there in one pass, O(text length) whatever the tokens.
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace camelid {

class AddedTokenMatcher {
 public:
  AddedTokenMatcher();
  // Of tokens with the same text the first wins, as the reference tokenizers do.
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

  // Appends (position, token) for every position of text where a token starts, ascending, with
  // the longest token starting there (special ones only if allow_special).
  void find_starts(std::string_view text, bool allow_special, std::vector<std::pair<size_t, const AddedToken*>>& out) const;
  bool contains_special(std::string_view text) const;  // any special token's text in text
  bool empty() const { return tokens_.empty(); }

 private:
  enum Kind { kAny, kPlain, kSpecial };
  struct Node {
    int fail = 0;
    int own[3] = {-1, -1, -1};   // token whose (reversed) text ends exactly here, per Kind
    int best[3] = {-1, -1, -1};  // the longest such token here or along the failure links
  };
  int child(int node, uint8_t byte) const;
  int step(int node, uint8_t byte) const;  // automaton transition
  template <class F>
  void scan(std::string_view text, F&& at) const;  // at(position, node) right to left; false stops

  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_;                  // nodes_[0]: the root (empty text)
  std::unordered_map<uint64_t, int> edges_;  // (node << 8 | byte) -> child, below the root
  int root_[256];                            // the root's children (-1: none), the hot path
};

}  // namespace camelid
