#include "runtime/grammar_match.h"

#include <algorithm>

#include "core/error.h"

namespace camelid::grammar {

namespace {
constexpr uint32_t kMinOfLen[5] = {0, 0, 0x80, 0x800, 0x10000};  // smallest code point per UTF-8 length
}

Matcher::Matcher(std::shared_ptr<const Grammar> g, const MatcherLimits& lim) : g_(std::move(g)), lim_(lim) {
  reset_tables();
  tops_.clear();
  for (uint32_t a : g_->alts[g_->root]) expand(a, 0, tops_);
  start_ = intern_state(intern_set(tops_), 0, 0, 0);
}

void Matcher::reset_tables() {
  nodes_.assign(1, Node{0, -1});  // node 0: the bottom of every stack
  node_ids_.clear();
  sets_.clear();
  set_ids_.clear();
  states_.clear();
  state_ids_.clear();
  n_tables_ = 0;
}

int32_t Matcher::intern_node(uint32_t pos, int32_t parent) {
  const uint64_t key = (uint64_t(pos) << 32) | uint32_t(parent);
  auto [it, added] = node_ids_.emplace(key, int32_t(nodes_.size()));
  if (added) nodes_.push_back({pos, parent});
  return it->second;
}

int32_t Matcher::intern_set(std::vector<int32_t>& tops) {
  std::sort(tops.begin(), tops.end());
  tops.erase(std::unique(tops.begin(), tops.end()), tops.end());
  if (tops.size() > lim_.max_stacks)
    fail("grammar: too ambiguous (more than ", lim_.max_stacks, " ways to read the text so far)");
  std::string key(reinterpret_cast<const char*>(tops.data()), tops.size() * sizeof(int32_t));
  auto [it, added] = set_ids_.emplace(std::move(key), int32_t(sets_.size()));
  if (added) sets_.push_back(tops);
  return it->second;
}

// All stacks reached from "continue at pos, then return to parent" whose top is a character
// class (or the empty stack 0: the grammar is complete). No left recursion (checked by the
// parser) means this terminates; `seen_` keeps ambiguous grammars from repeating work.
void Matcher::expand(uint32_t pos, int32_t parent, std::vector<int32_t>& out) {
  const Grammar& g = *g_;
  work_.assign(1, {pos, parent});
  seen_.clear();
  while (!work_.empty()) {
    auto [p, par] = work_.back();
    work_.pop_back();
    if (!seen_.emplace((uint64_t(p) << 32) | uint32_t(par), 0).second) continue;
    if (++work_done_ > lim_.max_work)
      fail("grammar: too costly to match (more than ", lim_.max_work, " grammar positions for one token)");
    if (seen_.size() > 64 * lim_.max_stacks)
      fail("grammar: too ambiguous (more than ", 64 * lim_.max_stacks, " grammar positions at once)");
    const Elem e = g.elems[p];
    if (e.type == ElemType::Char) {
      out.push_back(intern_node(p, par));
    } else if (e.type == ElemType::End) {
      if (par == 0) out.push_back(0);
      else work_.push_back({nodes_[size_t(par)].pos, nodes_[size_t(par)].parent});
    } else {
      // A reference at the end of its alternative returns straight to `par` (tail call): loops
      // written as right recursion (x* is r ::= x r | "") keep a constant depth.
      const int32_t cont = g.elems[p + 1].type == ElemType::End ? par : intern_node(p + 1, par);
      for (uint32_t a : g.alts[e.value]) work_.push_back({a, cont});
    }
  }
}

Matcher::State Matcher::intern_state(int32_t set, uint32_t cp, uint8_t need, uint8_t len) {
  const uint64_t key = (uint64_t(uint32_t(set)) << 32) | (uint64_t(cp) << 8) | (uint64_t(need) << 4) | len;
  auto [it, added] = state_ids_.emplace(key, int32_t(states_.size()));
  if (added) {
    const auto& tops = sets_[size_t(set)];
    DState d{set, cp, need, len, false, false, nullptr};
    d.accepting = need == 0 && !tops.empty() && tops[0] == 0;
    d.finished = need == 0 && tops.size() == 1 && tops[0] == 0;
    states_.push_back(std::move(d));
  }
  return it->second;
}

Matcher::State Matcher::after_char(int32_t set, uint32_t cp) {
  const Grammar& g = *g_;
  std::vector<int32_t> next;
  for (int32_t top : sets_[size_t(set)]) {
    if (top == 0) continue;
    const Node n = nodes_[size_t(top)];
    if (g.classes[g.elems[n.pos].value].contains(cp)) expand(n.pos + 1, n.parent, next);
  }
  if (next.empty()) return kDead;
  return intern_state(intern_set(next), 0, 0, 0);
}

// Half a character: alive while some stack's class holds a code point that starts this way.
Matcher::State Matcher::partial(int32_t set, uint32_t cp, uint8_t need, uint8_t len) {
  uint32_t lo = cp << (6 * need), hi = lo | ((1u << (6 * need)) - 1);
  lo = std::max(lo, kMinOfLen[len]);
  hi = std::min(hi, 0x10FFFFu);
  if (lo > hi) return kDead;
  const Grammar& g = *g_;
  for (int32_t top : sets_[size_t(set)]) {
    if (top == 0) continue;
    if (g.classes[g.elems[nodes_[size_t(top)].pos].value].intersects(lo, hi)) return intern_state(set, cp, need, len);
  }
  return kDead;
}

Matcher::State Matcher::compute_step(const DState& ds, uint8_t b) {
  // A copy: interning a new state may move states_ (and ds with it).
  const struct { int32_t set; uint32_t cp; uint8_t need, len; } d{ds.set, ds.cp, ds.need, ds.len};
  if (d.need == 0) {
    if (b < 0x80) return after_char(d.set, b);
    const uint8_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
    if (len == 0 || b > 0xF4 || b == 0xC0 || b == 0xC1) return kDead;
    return partial(d.set, b & (0x7F >> len), uint8_t(len - 1), len);
  }
  if ((b & 0xC0) != 0x80) return kDead;
  const uint32_t cp = (d.cp << 6) | (b & 0x3F);
  if (d.need > 1) return partial(d.set, cp, uint8_t(d.need - 1), d.len);
  if (cp < kMinOfLen[d.len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return kDead;
  return after_char(d.set, cp);
}

Matcher::State Matcher::step_slow(State s, uint8_t byte) {
  if (s < 0) return kDead;
  const State t = compute_step(states_[size_t(s)], byte);  // may grow states_: index again below
  DState& d = states_[size_t(s)];
  if (!d.trans && n_tables_ < lim_.max_tables) {
    d.trans.reset(new int32_t[256]);
    std::fill(d.trans.get(), d.trans.get() + 256, kUnknown);
    ++n_tables_;
  }
  if (d.trans) d.trans[byte] = t;
  return t;
}

Matcher::State Matcher::compact(State s) {
  if (s < 0) return s;
  // The state's stacks as explicit position lists (top first), then everything is rebuilt.
  const DState& d = states_[size_t(s)];
  const uint32_t cp = d.cp;
  const uint8_t need = d.need, len = d.len;
  std::vector<std::vector<uint32_t>> stacks;
  for (int32_t top : sets_[size_t(d.set)]) {
    std::vector<uint32_t> st;
    for (int32_t n = top; n != 0; n = nodes_[size_t(n)].parent) st.push_back(nodes_[size_t(n)].pos);
    stacks.push_back(std::move(st));
  }
  reset_tables();
  tops_.clear();
  for (uint32_t a : g_->alts[g_->root]) expand(a, 0, tops_);
  start_ = intern_state(intern_set(tops_), 0, 0, 0);
  std::vector<int32_t> tops;
  for (const auto& st : stacks) {
    int32_t n = 0;
    for (size_t i = st.size(); i-- > 0;) n = intern_node(st[i], n);
    tops.push_back(n);
  }
  const int32_t set = intern_set(tops);
  return intern_state(set, cp, need, len);
}

}  // namespace camelid::grammar
