#pragma once
// Byte-pair merging of one pre-token, shared by both tokenizer kinds: symbols start as
// characters (SentencePiece) or bytes (byte-level) and the adjacent pair with the best priority
// is merged until none is left; ties go to the leftmost pair, as in both reference tokenizers.
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace camelid {

class BpeMerges {
 public:
  // Ranked pairs (tokenizer.json: merges in file order).
  void add(int left, int right, int rank, int merged);
  bool empty() const { return table_.empty(); }

  struct Merge {
    int rank, merged;
  };
  const Merge* find(int left, int right) const {
    if (left < 0 || right < 0) return nullptr;
    auto it = table_.find(key(left, right));
    return it == table_.end() ? nullptr : &it->second;
  }

  // Symbols: token id per initial unit (-1 if the unit is not in the vocabulary: never merged)
  // and its byte length. On return `ids`/`lens` hold the merged symbols.
  void apply(std::vector<int>& ids, std::vector<int>& lens) const;

 private:
  static uint64_t key(int a, int b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }
  std::unordered_map<uint64_t, Merge> table_;
};

}  // namespace camelid
