#include "tokenizer/bpe.h"

#include <cstddef>
#include <functional>
#include <queue>

namespace camelid {

void BpeMerges::add(int left, int right, int rank, int merged) {
  table_.emplace(key(left, right), Merge{rank, merged});  // first (best) rank wins on duplicates
}

void BpeMerges::apply(std::vector<int>& ids, std::vector<int>& lens) const {
  const int n = int(ids.size());
  if (n < 2) return;
  std::vector<int> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) prev[size_t(i)] = i - 1, next[size_t(i)] = i + 1 < n ? i + 1 : -1;

  // Candidates ordered by (rank, position); stale entries are skipped when popped, which keeps
  // the whole merge O(n log n) even for a megabyte-long word.
  struct Cand {
    int rank, left, left_id, right_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int l) {
    if (l < 0) return;
    const int r = next[size_t(l)];
    if (r < 0) return;
    if (const Merge* m = find(ids[size_t(l)], ids[size_t(r)])) heap.push(Cand{m->rank, l, ids[size_t(l)], ids[size_t(r)]});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);

  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    const int l = c.left, r = next[size_t(l)];
    if (lens[size_t(l)] == 0 || r < 0 || ids[size_t(l)] != c.left_id || ids[size_t(r)] != c.right_id) continue;
    ids[size_t(l)] = find(c.left_id, c.right_id)->merged;
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
