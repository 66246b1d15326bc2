#pragma once
// Matching text against a Grammar, byte by byte. The grammar is a pushdown automaton: a position
// is a set of stacks of grammar positions (each stack's top is a character class); a code point
// advances every stack whose top accepts it. Those sets are interned, and so are the byte-level
// states built on them (a set plus the bytes of an unfinished UTF-8 character), with a lazily
// filled transition table per state: text seen before (the inside of a JSON string, a key) costs
// one table lookup per byte. This is what makes the token mask fast: the vocabulary's trie is
// walked through these tables, so a shared prefix is evaluated once and repeated states are free.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/grammar_parse.h"

namespace camelid::grammar {

struct MatcherLimits {
  size_t max_stacks = 4096;      // stacks in one set (an ambiguous grammar): Error beyond
  size_t max_states = 50000;     // interned states before compact() starts afresh
  size_t max_tables = 16384;     // 1 KiB transition tables; states beyond step without a memo
  size_t max_work = 20000000;    // grammar positions expanded between reset_budget() calls: Error beyond
};

class Matcher {
 public:
  using State = int32_t;
  static constexpr State kDead = -1;

  explicit Matcher(std::shared_ptr<const Grammar> g, const MatcherLimits& lim = {});

  State start() const { return start_; }
  // The state after one more byte, or kDead. Invalid UTF-8 is always dead.
  State step(State s, uint8_t byte) {
    const int32_t* t = states_[size_t(s)].trans.get();
    if (t && t[byte] != kUnknown) return t[byte];
    return step_slow(s, byte);
  }
  State advance(State s, std::string_view bytes) {
    for (char c : bytes) {
      if (s == kDead) break;
      s = step(s, uint8_t(c));
    }
    return s;
  }
  // The grammar is complete here: root matched and no character is half-way.
  bool accepting(State s) const { return s >= 0 && states_[size_t(s)].accepting; }
  // No byte can follow (the only possible continuation is the end).
  bool finished(State s) const { return s >= 0 && states_[size_t(s)].finished; }
  bool matches(std::string_view text) { return accepting(advance(start_, text)); }

  // A hostile grammar must not hold a thread for long: the expansion work between two calls of
  // this (one token's mask) is bounded by max_work.
  void reset_budget() { work_done_ = 0; }
  size_t n_states() const { return states_.size(); }
  bool oversized() const { return states_.size() > lim_.max_states; }
  // Forgets every state but `s` (returned renumbered): bounds memory over a long generation.
  State compact(State s);

 private:
  static constexpr int32_t kUnknown = -2;
  struct Node {  // one stack entry; stacks share their tails
    uint32_t pos;    // element index
    int32_t parent;  // node below, 0 = bottom (the empty stack is node 0)
  };
  struct DState {
    int32_t set;
    uint32_t cp;    // bits of an unfinished UTF-8 character
    uint8_t need;   // continuation bytes still expected (0: none pending)
    uint8_t len;    // its total length
    bool accepting, finished;
    std::unique_ptr<int32_t[]> trans;
  };

  State step_slow(State s, uint8_t byte);
  State compute_step(const DState& d, uint8_t byte);
  State partial(int32_t set, uint32_t cp, uint8_t need, uint8_t len);
  State after_char(int32_t set, uint32_t cp);
  State intern_state(int32_t set, uint32_t cp, uint8_t need, uint8_t len);
  int32_t intern_node(uint32_t pos, int32_t parent);
  int32_t intern_set(std::vector<int32_t>& tops);
  void expand(uint32_t pos, int32_t parent, std::vector<int32_t>& out);
  void reset_tables();

  std::shared_ptr<const Grammar> g_;
  MatcherLimits lim_;
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, int32_t> node_ids_;
  std::vector<std::vector<int32_t>> sets_;
  std::unordered_map<std::string, int32_t> set_ids_;
  std::vector<DState> states_;
  std::unordered_map<uint64_t, int32_t> state_ids_;
  size_t n_tables_ = 0;
  size_t work_done_ = 0;
  State start_ = kDead;
  // scratch for expand()
  std::vector<std::pair<uint32_t, int32_t>> work_;
  std::vector<int32_t> tops_;
  std::unordered_map<uint64_t, char> seen_;
};

}  // namespace camelid::grammar
