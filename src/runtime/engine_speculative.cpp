// Speculative decoding inside the engine's batched steps (see Engine::enable_speculative).
#include <algorithm>

#include "core/error.h"
#include "runtime/engine.h"

namespace camelid {

void Engine::enable_speculative(const SpeculativeOptions& spec) {
  if (spec.max_draft < 1 || spec.max_draft > 64) fail("--draft-max must be in 1..64, got ", spec.max_draft);
  if (spec.ngram_min < 1 || spec.ngram_max < spec.ngram_min)
    fail("prompt lookup: n-gram sizes ", spec.ngram_min, "..", spec.ngram_max, " are not a range of sizes >= 1");
  std::unique_ptr<KVCache> draft_cache;
  if (spec.draft_model) {
    const ModelConfig& dc = spec.draft_model->config();
    if (dc.vocab_size != model_.config().vocab_size)
      fail("the draft model's vocabulary has ", dc.vocab_size, " tokens, the model's ", model_.config().vocab_size);
    // Every slot can hold a whole context (blocks are allocated as positions are stored): a
    // draft's sequence holds at most its slot's tokens and guesses, so drafting never runs out.
    draft_cache = std::make_unique<KVCache>(dc, n_slots(), std::min(cache_.ctx(), dc.max_seq_len),
                                            spec.draft_model->kv_type());
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.req != nullptr; }) || !queue_.empty())
    fail("speculative decoding must be enabled before any request is submitted");
  spec_ = spec;
  // A step's rows stay near n_batch (at least one guess per slot): a fixed bound, so that no
  // request's guesses depend on how many others run.
  spec_->max_draft = std::min(spec.max_draft, std::max(1, n_batch_ / n_slots() - 1));
  draft_cache_ = std::move(draft_cache);
  stats_.kv_budget_bytes = kv_budget_bytes();
}

SpeculativeStats Engine::speculative_stats() {
  std::lock_guard<std::mutex> lk(mu_);
  return spec_stats_;
}

void Engine::reuse_draft_prefix(int i) {
  Slot& s = slots_[size_t(i)];
  const std::vector<int>& p = s.req->prompt;
  const size_t n = std::min(s.dtokens.size(), p.size());
  const int same = int(std::mismatch(p.begin(), p.begin() + long(n), s.dtokens.begin()).first - p.begin());
  // Its blocks are never published nor shared, so truncating keeps exactly `same` positions.
  s.dtokens.resize(size_t(draft_cache_->truncate(i, same)));
}

void Engine::make_guesses(const std::vector<int>& decoding) {
  std::vector<int> drafting, rooms;
  for (int i : decoding) {
    Slot& s = slots_[size_t(i)];
    s.guess.clear();
    s.q.clear();
    if (!s.speculate) continue;
    // The newest token and the guesses must fit the context, and no more guesses than tokens
    // still wanted (every pass also gives one token of the model's own). Depends only on the
    // request: its output does not depend on what else runs.
    const int len = int(s.history.size());
    int room = std::min({s.pace.take(), cache_.ctx() - len, s.req->max_tokens - s.generated - 1});
    if (draft_cache_) room = std::min(room, draft_cache_->ctx() - len);
    if (room <= 0) continue;
    if (draft_cache_) {
      drafting.push_back(i);
      rooms.push_back(room);
    } else {
      s.guess = prompt_lookup_draft(s.history, spec_->ngram_max, spec_->ngram_min, room);
    }
  }
  if (drafting.empty()) return;
  draft_guesses(drafting, rooms);
  // A guess the model cannot feed (a corrupt embedding row of its own, fine in the draft's) ends
  // the guesses: it would fail the whole batch.
  for (int i : drafting) {
    Slot& s = slots_[size_t(i)];
    for (size_t k = 0; k < s.guess.size(); ++k) {
      try {
        model_.check_token(s.guess[k]);
      } catch (const Error&) {
        s.guess.resize(k);
        s.q.resize(k);
        break;
      }
    }
  }
}

void Engine::draft_prefill(const std::vector<int>& prompts, const std::vector<int>& taken) {
  Batch b;
  std::vector<std::pair<int, size_t>> held;  // (slot, draft positions before): kept on a failure
  for (size_t k = 0; k < prompts.size(); ++k) {
    Slot& s = slots_[size_t(prompts[k])];
    const std::vector<int>& p = s.req->prompt;
    if (!s.speculate || int(p.size()) >= draft_cache_->ctx()) continue;  // the latter never guesses
    held.emplace_back(prompts[k], s.dtokens.size());
    const size_t end = std::min(p.size(), s.dtokens.size() + size_t(taken[k]));
    while (s.dtokens.size() < end) {
      b.add(p[s.dtokens.size()], int(s.dtokens.size()), prompts[k], false);
      s.dtokens.push_back(p[s.dtokens.size()]);
    }
  }
  if (b.size() == 0) return;
  try {
    spec_->draft_model->forward(b, *draft_cache_, draft_logits_);
  } catch (const std::exception&) {  // e.g. a prompt token the draft cannot feed: it guesses later or never
    for (const auto& [i, n] : held) {
      Slot& s = slots_[size_t(i)];
      s.dtokens.resize(size_t(draft_cache_->truncate(i, int(std::min(n, s.dtokens.size())))));
    }
  }
}

void Engine::draft_guesses(const std::vector<int>& slots, const std::vector<int>& room) {
  Llama& draft = *spec_->draft_model;
  const int V = model_.config().vocab_size;
  std::vector<size_t> held(slots.size());  // the draft positions each slot held before: kept on a failure
  for (size_t k = 0; k < slots.size(); ++k) held[k] = slots_[size_t(slots[k])].dtokens.size();
  std::vector<std::vector<int>> dhist(slots.size());  // the history the draft's penalties read
  Batch b;
  std::vector<int> owner;  // the slot (index into `slots`) of each logits row
  std::vector<float> row(static_cast<size_t>(V));
  // Draws each owner's next guess from the logits of the pass just run.
  auto guess_from_logits = [&] {
    for (size_t r = 0; r < owner.size(); ++r) {
      Slot& s = slots_[size_t(slots[size_t(owner[r])])];
      std::copy(draft_logits_.begin() + long(r) * V, draft_logits_.begin() + long(r + 1) * V, row.begin());
      std::vector<int>& h = dhist[size_t(owner[r])];
      s.q.emplace_back();
      const int g = draft_guess(*s.draft_sampler, row.data(), V, h, s.q.back());
      s.guess.push_back(g);
      h.push_back(g);
    }
  };
  try {
    // First the tokens the draft has not seen (a new prompt; the tokens of the last pass), in
    // passes of at most n_batch rows; the last one's logits give the first guess.
    size_t k = 0;
    while (k < slots.size()) {
      b.clear();
      owner.clear();
      for (; k < slots.size() && b.size() < n_batch_; ++k) {
        Slot& s = slots_[size_t(slots[k])];
        while (s.dtokens.size() < s.history.size() && b.size() < n_batch_) {
          const int t = s.history[s.dtokens.size()];
          const bool last = s.dtokens.size() + 1 == s.history.size();
          b.add(t, int(s.dtokens.size()), slots[k], last);
          if (last) owner.push_back(int(k));
          s.dtokens.push_back(t);
        }
        if (s.dtokens.size() < s.history.size()) break;  // the next pass goes on with it
      }
      if (b.size() == 0) break;  // nothing new to feed (cannot happen: the newest token is new)
      draft.forward(b, *draft_cache_, draft_logits_);
      for (int o : owner) dhist[size_t(o)] = slots_[size_t(slots[size_t(o)])].history;
      guess_from_logits();
    }
    // Then one row per slot and guess: the guess just drawn, whose logits give the next one.
    for (int j = 1;; ++j) {
      b.clear();
      owner.clear();
      for (size_t k2 = 0; k2 < slots.size(); ++k2) {
        Slot& s = slots_[size_t(slots[k2])];
        if (room[k2] <= j || s.guess.empty()) continue;
        b.add(s.guess.back(), int(s.dtokens.size()), slots[k2], true);
        s.dtokens.push_back(s.guess.back());
        owner.push_back(int(k2));
      }
      if (b.size() == 0) break;
      draft.forward(b, *draft_cache_, draft_logits_);
      guess_from_logits();
    }
  } catch (const std::exception&) {
    // Cannot happen (the draft cache holds every slot's context), but then they decode plainly.
    for (size_t k = 0; k < slots.size(); ++k) {
      Slot& s = slots_[size_t(slots[k])];
      s.guess.clear();
      s.q.clear();
      s.dtokens.resize(std::min(s.dtokens.size(), held[k]));
      s.dtokens.resize(size_t(draft_cache_->truncate(slots[k], int(s.dtokens.size()))));
    }
  }
}

void Engine::verify(Slot& s, const float* logits, SpeculativeStats& st) {
  const int i = int(&s - slots_.data());
  const int base = s.pos;  // where the newest token went; its guesses follow it
  int emitted = 0;
  // As accept() after sampling: the cache holds the newest token and the guesses before this one.
  auto emit = [&](int id) {
    s.pos = base + 1 + emitted++;
    if (s.req->cancelled) {
      finish(s, "cancelled");
      return false;
    }
    return deliver(s, id, nullptr);
  };
  ++st.steps;
  st.drafted += long(s.guess.size());
  bool more = true;
  // The request's sampler lives until emit finishes the slot, after which it is not used.
  const int kept = verify_guesses(*s.sampler, s.history, logits, model_.config().vocab_size, s.guess, s.q, emit,
                                  &more, verify_scratch_, &st);
  // Positions past the kept guesses are dropped from the caches (a finished slot's were, by
  // finish()); nothing past them was published: only full blocks below s.pos are.
  if (more) cache_.truncate(i, s.pos);
  s.pace.update(kept, int(s.guess.size()));
  if (draft_cache_) {
    s.dtokens.resize(std::min(s.dtokens.size(), size_t(base + 1 + kept)));
    draft_cache_->truncate(i, int(s.dtokens.size()));
  }
}

}  // namespace camelid
