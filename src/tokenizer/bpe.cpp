#include "tokenizer/bpe.h"

#include <cstddef>
#include <algorithm>
#include <functional>

namespace camelid {

void BpeMerges::add(int left, int right, int rank, int merged) {
  table_.emplace(key(left, right), Merge{rank, merged});  // first (best) rank wins on duplicates
}

void BpeMerges::apply(std::vector<int>& ids, std::vector<int>& lens) const {
  const int n = int(ids.size());
  if (n < 2) return;
  std::vector<int> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) prev[size_t(i)] = i - 1, next[size_t(i)] = i + 1 < n ? i + 1 : -1;

  // Candidates ordered by (rank, position); a popped one is used only if the pair now at that
  // position still has that rank (any such pair is the one to merge next: every live pair has its
  // own entry). Stale entries are skipped, which keeps the whole merge O(n log n) even for a
  // multi-megabyte word, in 8 bytes per entry.
  struct Cand {
    int rank, left;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::vector<Cand> heap;
  heap.reserve(size_t(n));
  auto merge_at = [&](int l) -> const Merge* {
    if (l < 0) return nullptr;
    const int r = next[size_t(l)];
    return r < 0 ? nullptr : find(ids[size_t(l)], ids[size_t(r)]);
  };
  for (int i = 0; i + 1 < n; ++i)
    if (const Merge* m = merge_at(i)) heap.push_back(Cand{m->rank, i});
  const std::greater<Cand> later;
  std::make_heap(heap.begin(), heap.end(), later);
  auto push = [&](int l) {
    if (const Merge* m = merge_at(l)) {
      heap.push_back(Cand{m->rank, l});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  };

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Cand c = heap.back();
    heap.pop_back();
    if (lens[size_t(c.left)] == 0) continue;  // merged into its left neighbour
    const Merge* m = merge_at(c.left);
    if (!m || m->rank != c.rank) continue;
    const int l = c.left, r = next[size_t(l)];
    ids[size_t(l)] = m->merged;
    lens[size_t(l)] += lens[size_t(r)];
    lens[size_t(r)] = 0;  // dead
    next[size_t(l)] = next[size_t(r)];
    if (next[size_t(l)] >= 0) prev[size_t(next[size_t(l)])] = l;
    push(prev[size_t(l)]);
    push(l);
  }
  int w = 0;
  for (int i = 0; i < n; ++i)
    if (lens[size_t(i)] > 0) ids[size_t(w)] = ids[size_t(i)], lens[size_t(w)] = lens[size_t(i)], ++w;
  ids.resize(size_t(w));
  lens.resize(size_t(w));
}

}  // namespace camelid
