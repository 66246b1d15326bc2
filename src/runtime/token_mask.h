#pragma once
// Grammar-constrained sampling over a real vocabulary. TokenVocab holds every token's bytes in a
// trie (built once per tokenizer, shared by all requests); the allowed tokens of a matcher state
// are found by walking the trie in preorder through the matcher's transition tables, so a prefix
// shared by many tokens is evaluated once and a dead prefix skips its whole subtree. A token may
// end half-way through a UTF-8 character: the matcher state carries the pending bytes.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/grammar_match.h"
#include "runtime/token_constraint.h"

namespace camelid {

class TokenVocab {
 public:
  // bytes[id]: what token id adds to the output. Tokens with excluded[id] set (special tokens),
  // empty ones (they would let a grammar loop without progress) and very long ones are never
  // allowed by a grammar.
  TokenVocab(std::vector<std::string> bytes, const std::vector<char>& excluded);
  int size() const { return int(bytes_.size()); }
  const std::string& bytes(int id) const { return bytes_[size_t(id)]; }
  bool usable(int id) const { return id >= 0 && id < size() && usable_[size_t(id)]; }
  size_t trie_nodes() const { return nodes_.size() - 1; }
  // bits (resized to size() bits): the tokens the matcher can take from state s.
  void allowed(grammar::Matcher& m, grammar::Matcher::State s, std::vector<uint64_t>& bits) const;

 private:
  struct Node {        // preorder; children follow their parent
    uint32_t end;      // index just past this node's subtree
    uint32_t tok;      // first index in toks_ of the tokens ending here (next node's tok ends them)
    uint8_t byte;
    uint16_t depth;    // 1 for a child of the (implicit) root
  };
  std::vector<std::string> bytes_;
  std::vector<char> usable_;
  std::vector<Node> nodes_;  // plus a sentinel at the end
  std::vector<int32_t> toks_;
  int max_depth_ = 0;
};

class GrammarConstraint : public TokenConstraint {
 public:
  // end_ids: the tokens that end the output (allowed exactly when the grammar is complete).
  GrammarConstraint(std::shared_ptr<const grammar::Grammar> g, std::shared_ptr<const TokenVocab> vocab,
                    std::vector<int> end_ids);
  void mask(float* logits, int n_vocab) override;
  void accept(int token) override;
  bool can_end() const override { return m_.accepting(state_); }
  // The tokens allowed now, as bits (what mask() applies); cached for recent states.
  const std::vector<uint64_t>& allowed();

 private:
  grammar::Matcher m_;
  std::shared_ptr<const TokenVocab> vocab_;
  std::vector<int> end_ids_;
  grammar::Matcher::State state_;
  struct Cached {
    grammar::Matcher::State state;
    std::vector<uint64_t> bits;
  };
  std::vector<Cached> cache_;  // a few recent states (inside a string the state repeats)
  size_t next_slot_ = 0;
};

}  // namespace camelid
