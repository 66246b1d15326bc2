#include "runtime/token_mask.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace camelid {

namespace {
constexpr size_t kMaxTokenBytes = 1024;  // longer tokens are never allowed (keeps the trie depth small)
constexpr size_t kCacheSlots = 8;
}  // namespace

TokenVocab::TokenVocab(std::vector<std::string> bytes, const std::vector<char>& excluded)
    : bytes_(std::move(bytes)), usable_(bytes_.size(), 0) {
  std::vector<int32_t> order;
  for (size_t i = 0; i < bytes_.size(); ++i) {
    const bool ex = i < excluded.size() && excluded[i];
    if (!ex && !bytes_[i].empty() && bytes_[i].size() <= kMaxTokenBytes) {
      usable_[i] = 1;
      order.push_back(int32_t(i));
    }
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return bytes_[size_t(a)] != bytes_[size_t(b)] ? bytes_[size_t(a)] < bytes_[size_t(b)] : a < b;
  });
  // Sorted strings give the preorder directly: each token shares a prefix with the one before
  // (its path), pops the rest, and pushes new nodes for what remains.
  std::vector<uint32_t> path;  // node indices from depth 1 down
  const std::string* prev = nullptr;
  for (int32_t id : order) {
    const std::string& t = bytes_[size_t(id)];
    size_t common = 0;
    if (prev)
      while (common < path.size() && common < t.size() && (*prev)[common] == t[common]) ++common;
    while (path.size() > common) {
      nodes_[path.back()].end = uint32_t(nodes_.size());
      path.pop_back();
    }
    for (size_t d = common; d < t.size(); ++d) {
      path.push_back(uint32_t(nodes_.size()));
      nodes_.push_back({0, uint32_t(toks_.size()), uint8_t(t[d]), uint16_t(d + 1)});
    }
    toks_.push_back(id);  // tokens ending at the deepest node, always the last one created
    max_depth_ = std::max(max_depth_, int(t.size()));
    prev = &t;
  }
  while (!path.empty()) {
    nodes_[path.back()].end = uint32_t(nodes_.size());
    path.pop_back();
  }
  nodes_.push_back({uint32_t(nodes_.size() + 1), uint32_t(toks_.size()), 0, 0});  // sentinel
}

void TokenVocab::allowed(grammar::Matcher& m, grammar::Matcher::State s, std::vector<uint64_t>& bits) const {
  bits.assign((bytes_.size() + 63) / 64, 0);
  if (s < 0) return;
  std::vector<grammar::Matcher::State> st(size_t(max_depth_) + 1);
  st[0] = s;
  const Node* nd = nodes_.data();
  const size_t n = nodes_.size() - 1;
  for (size_t i = 0; i < n;) {
    const Node& x = nd[i];
    const grammar::Matcher::State t = m.step(st[x.depth - 1u], x.byte);
    if (t < 0) {
      i = x.end;  // no token under this prefix fits
      continue;
    }
    st[x.depth] = t;
    for (uint32_t k = x.tok, e = nd[i + 1].tok; k < e; ++k) bits[uint32_t(toks_[k]) >> 6] |= 1ull << (toks_[k] & 63);
    ++i;
  }
}

GrammarConstraint::GrammarConstraint(std::shared_ptr<const grammar::Grammar> g,
                                     std::shared_ptr<const TokenVocab> vocab, std::vector<int> end_ids)
    : m_(std::move(g)), vocab_(std::move(vocab)), end_ids_(std::move(end_ids)), state_(m_.start()) {}

const std::vector<uint64_t>& GrammarConstraint::allowed() {
  if (m_.oversized()) {  // a long generation through a recursive grammar: start the tables afresh
    state_ = m_.compact(state_);
    cache_.clear();
  }
  for (const Cached& c : cache_)
    if (c.state == state_) return c.bits;
  Cached* c;
  if (cache_.size() < kCacheSlots) {
    cache_.push_back({grammar::Matcher::kDead, {}});
    c = &cache_.back();
  } else {
    c = &cache_[next_slot_++ % kCacheSlots];
  }
  c->state = grammar::Matcher::kDead;
  m_.reset_budget();
  vocab_->allowed(m_, state_, c->bits);
  c->state = state_;
  return c->bits;
}

void GrammarConstraint::mask(float* logits, int n_vocab) {
  const std::vector<uint64_t>& bits = allowed();
  // End tokens are special, so masked below; they come back when the output may end.
  std::vector<std::pair<int, float>> ends;
  if (can_end())
    for (int id : end_ids_)
      if (id >= 0 && id < n_vocab) ends.push_back({id, logits[id]});
  const float ninf = -std::numeric_limits<float>::infinity();
  const int nv = std::min(n_vocab, vocab_->size());
  bool any = false;
  for (int w = 0; w * 64 < nv; ++w) {
    const uint64_t b = bits[size_t(w)];
    any |= b != 0;
    if (b == ~0ull && w * 64 + 64 <= nv) continue;
    for (int i = w * 64, e = std::min(nv, w * 64 + 64); i < e; ++i)
      if (!((b >> (i & 63)) & 1)) logits[i] = ninf;
  }
  for (int i = nv; i < n_vocab; ++i) logits[i] = ninf;  // ids the tokenizer does not have
  for (auto [id, v] : ends) logits[id] = v;
  if (!any && ends.empty())
    fail(can_end() ? "grammar: the output is complete but the request has no end token to finish it"
                   : "grammar: no token of the vocabulary can continue the output here");
}

void GrammarConstraint::accept(int token) {
  if (std::find(end_ids_.begin(), end_ids_.end(), token) != end_ids_.end()) {
    if (!can_end()) fail("grammar: end token ", token, " before the output is complete");
    return;
  }
  if (!vocab_->usable(token)) fail("grammar: token ", token, " cannot be produced under a grammar");
  m_.reset_budget();
  const grammar::Matcher::State t = m_.advance(state_, vocab_->bytes(token));
  if (t < 0) fail("grammar: token ", token, " does not fit the grammar here");
  state_ = t;
  if (m_.oversized()) {
    state_ = m_.compact(state_);
    cache_.clear();
  }
}

}  // namespace camelid
