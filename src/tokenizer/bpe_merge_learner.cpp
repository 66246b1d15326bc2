#include "tokenizer/bpe_merge_learner.h"

#include <algorithm>
#include <queue>

namespace camelid {

int MergeVocab::add(const std::string& text) {
  auto [it, fresh] = ids.emplace(text, int(texts.size()));
  if (fresh) texts.push_back(text);
  return it->second;
}

namespace {

using Key = uint64_t;
Key key(int a, int b) { return Key(uint32_t(a)) << 32 | uint32_t(b); }
int left_of(Key k) { return int(uint32_t(k >> 32)); }
int right_of(Key k) { return int(uint32_t(k)); }

struct Entry {
  int64_t count;
  Key pair;
};

}  // namespace

std::vector<std::pair<int, int>> learn_bpe_merges(MergeCorpus& corpus, MergeVocab& vocab, size_t target,
                                                  const std::function<void(size_t)>& progress) {
  std::vector<std::pair<int, int>> merges;
  // Total count of each adjacent pair, and the words it occurs in (possibly stale: a word whose
  // pair was merged away stays listed; merging checks). Counts are exact at all times.
  std::unordered_map<Key, int64_t> count;
  std::unordered_map<Key, std::vector<uint32_t>> where;
  for (size_t w = 0; w < corpus.words.size(); ++w) {
    const std::vector<int>& s = corpus.words[w];
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      if (s[i] < 0 || s[i + 1] < 0) continue;
      const Key k = key(s[i], s[i + 1]);
      count[k] += corpus.counts[w];
      auto& list = where[k];
      if (list.empty() || list.back() != uint32_t(w)) list.push_back(uint32_t(w));
    }
  }

  // Max-heap with lazy deletion: an entry's count is never below the pair's true count (counts of
  // existing pairs only fall; a merge's new pairs are pushed once it is done), so an entry whose
  // count is still exact is the best pair.
  const std::vector<std::string>& text = vocab.texts;
  auto lower = [&text](const Entry& x, const Entry& y) {
    if (x.count != y.count) return x.count < y.count;
    const int c = text[size_t(left_of(x.pair))].compare(text[size_t(left_of(y.pair))]);
    if (c != 0) return c > 0;
    return text[size_t(right_of(x.pair))] > text[size_t(right_of(y.pair))];
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(lower)> heap(lower);
  for (auto& [k, c] : count)
    if (c > 0) heap.push(Entry{c, k});

  std::vector<uint32_t> stamp(corpus.words.size(), UINT32_MAX);
  std::vector<Key> touched;
  if (progress) progress(text.size());
  while (text.size() < target && !heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    auto cit = count.find(top.pair);
    const int64_t now = cit == count.end() ? 0 : cit->second;
    if (now != top.count) {
      if (now > 0) heap.push(Entry{now, top.pair});
      continue;
    }
    if (now <= 0) continue;
    const int a = left_of(top.pair), b = right_of(top.pair);
    const std::string merged = text[size_t(a)] + text[size_t(b)];
    if (vocab.reserved.count(merged)) continue;  // never offered again: its count can only fall
    const int nid = vocab.add(merged);
    merges.emplace_back(a, b);

    auto wit = where.find(top.pair);
    std::vector<uint32_t> words = std::move(wit->second);
    where.erase(wit);
    touched.clear();
    const uint32_t step = uint32_t(merges.size());
    for (uint32_t w : words) {
      if (stamp[w] == step) continue;
      stamp[w] = step;
      std::vector<int>& s = corpus.words[w];
      bool has = false;
      for (size_t i = 0; i + 1 < s.size() && !has; ++i) has = s[i] == a && s[i + 1] == b;
      if (!has) continue;
      const int64_t c = corpus.counts[w];
      // Words are short (capped when counted): recounting the whole word is simpler than local
      // deltas and as fast.
      for (size_t i = 0; i + 1 < s.size(); ++i)
        if (s[i] >= 0 && s[i + 1] >= 0) count[key(s[i], s[i + 1])] -= c;
      size_t o = 0;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) s[o++] = nid, i += 2;
        else s[o++] = s[i++];
      }
      s.resize(o);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        if (s[i] < 0 || s[i + 1] < 0) continue;
        const Key k = key(s[i], s[i + 1]);
        count[k] += c;
        if (s[i] == nid || s[i + 1] == nid) {
          auto& list = where[k];
          if (list.empty() || list.back() != w) list.push_back(w);
          touched.push_back(k);
        }
      }
    }
    count.erase(top.pair);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (Key k : touched)
      if (int64_t c = count[k]; c > 0) heap.push(Entry{c, k});
    if (progress && merges.size() % 64 == 0) progress(text.size());
  }
  if (progress) progress(text.size());
  return merges;
}

}  // namespace camelid
