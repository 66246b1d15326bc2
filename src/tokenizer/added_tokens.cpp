#include "tokenizer/added_tokens.h"

#include <algorithm>

namespace camelid {

AddedTokenMatcher::AddedTokenMatcher() : nodes_(1) { std::fill(std::begin(root_), std::end(root_), -1); }

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) : AddedTokenMatcher() {
  tokens_ = tokens;
  std::vector<std::vector<std::pair<uint8_t, int>>> children(1);  // for the breadth-first pass
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& text = tokens_[t].content;
    if (text.empty()) continue;
    int node = 0;
    for (size_t k = text.size(); k-- > 0;) {  // reversed
      const uint8_t c = uint8_t(text[k]);
      int next = child(node, c);
      if (next < 0) {
        next = int(nodes_.size());
        nodes_.emplace_back();
        children.emplace_back();
        children[size_t(node)].emplace_back(c, next);
        if (node == 0) root_[c] = next;
        else edges_.emplace(uint64_t(uint32_t(node)) << 8 | c, next);
      }
      node = next;
    }
    Node& n = nodes_[size_t(node)];
    if (n.own[kAny] < 0) n.own[kAny] = int(t);
    int& own = n.own[tokens_[t].special ? kSpecial : kPlain];
    if (own < 0) own = int(t);
  }
  // Failure links breadth first: a node's link is the longest proper suffix that is also a node,
  // so its `best` tokens are shorter; a node's own token, if any, is the longest.
  std::vector<int> queue{0};
  for (size_t q = 0; q < queue.size(); ++q) {
    const int u = queue[q];
    Node& nu = nodes_[size_t(u)];
    for (int k = 0; k < 3; ++k) nu.best[k] = nu.own[k] >= 0 ? nu.own[k] : u == 0 ? -1 : nodes_[size_t(nu.fail)].best[k];
    for (auto [c, v] : children[size_t(u)]) {
      int f = nu.fail;
      while (u != 0 && f != 0 && child(f, c) < 0) f = nodes_[size_t(f)].fail;
      const int target = u == 0 ? 0 : child(f, c);
      nodes_[size_t(v)].fail = target >= 0 && target != v ? target : 0;
      queue.push_back(v);
    }
  }
}

int AddedTokenMatcher::child(int node, uint8_t byte) const {
  if (node == 0) return root_[byte];
  auto it = edges_.find(uint64_t(uint32_t(node)) << 8 | byte);
  return it == edges_.end() ? -1 : it->second;
}

int AddedTokenMatcher::step(int node, uint8_t byte) const {
  for (;;) {
    const int next = child(node, byte);
    if (next >= 0) return next;
    if (node == 0) return 0;
    node = nodes_[size_t(node)].fail;
  }
}

template <class F>
void AddedTokenMatcher::scan(std::string_view text, F&& at) const {
  // Right to left: after reading text[i], the state is the longest prefix of text[i..] that is a
  // suffix of some token, and its `best` is the longest token that starts at i.
  int node = 0;
  for (size_t i = text.size(); i-- > 0;) {
    node = step(node, uint8_t(text[i]));
    if (node != 0 && !at(i, nodes_[size_t(node)])) return;
  }
}

void AddedTokenMatcher::find_starts(std::string_view text, bool allow_special,
                                    std::vector<std::pair<size_t, const AddedToken*>>& out) const {
  if (tokens_.empty()) return;
  const size_t first = out.size();
  const Kind kind = allow_special ? kAny : kPlain;
  scan(text, [&](size_t i, const Node& n) {
    if (n.best[kind] >= 0) out.emplace_back(i, &tokens_[size_t(n.best[kind])]);
    return true;
  });
  std::reverse(out.begin() + long(first), out.end());
}

bool AddedTokenMatcher::contains_special(std::string_view text) const {
  bool found = false;
  scan(text, [&](size_t, const Node& n) { return !(found = n.best[kSpecial] >= 0); });
  return found;
}

}  // namespace camelid
