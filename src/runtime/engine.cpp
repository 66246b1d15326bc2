#include "runtime/engine.h"

#include <algorithm>
#include <chrono>
#include <omp.h>

#include "core/error.h"
#include "runtime/session.h"

namespace camelid {

namespace {
// Prompt tokens per step while other sequences decode, by default: as many as there are decoding
// rows, at least kMinPrefillChunk. On a CPU a batch of rows is compute-bound, so a step's time
// grows with its rows: a chunk as large as the decoding rows at most doubles their gap between two
// tokens (a fixed 64 made it 3-5x: p99 gap 242 ms against 116 ms now, 16 streams of bench-450m
// Q4_K_M on 2 Zen 3 cores; a long prompt's first token comes later in exchange).
constexpr int kMinPrefillChunk = 16;
}

Engine::Engine(Llama& model, int n_slots, int ctx_per_slot, int n_batch, bool prefix_cache,
               bool interleave_prefill, long kv_budget_tokens, int prefill_chunk)
    : model_(model),
      cache_(model.config(), n_slots, std::min(ctx_per_slot, model.config().max_seq_len), model.kv_type(),
             kv_budget_tokens),
      n_batch_(n_batch),
      prefill_chunk_(prefill_chunk),
      prefix_cache_(prefix_cache),
      interleave_prefill_(interleave_prefill),
      slots_(n_slots),
      omp_threads_(omp_get_max_threads()) {
  stats_.kv_cells_total = cache_.capacity_tokens();
  stats_.kv_budget_bytes = kv_budget_bytes();
  thread_ = std::thread([this] {
    omp_set_num_threads(omp_threads_);
    loop();
  });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  for (auto& s : slots_)
    if (s.req) finish(s, "cancelled");
  for (auto& r : queue_)
    if (r->on_finish) r->on_finish("cancelled", int(r->prompt.size()), 0);
}

void Engine::submit(std::shared_ptr<EngineRequest> req) {
  if (req->prompt.empty()) fail("the prompt is empty");
  if (int(req->prompt.size()) >= cache_.ctx())
    fail("the prompt has ", req->prompt.size(), " tokens but the context is ", cache_.ctx(), " tokens");
  for (int id : req->prompt) model_.check_token(id);  // here, not in a batch shared with others
  req->sampling.validate();
  {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back(std::move(req));
  }
  cv_.notify_all();
}

EngineStats Engine::stats() {
  std::lock_guard<std::mutex> lk(mu_);
  EngineStats st = stats_;
  st.queued = int(queue_.size());  // live: the loop updates it only when it wakes
  return st;
}

void Engine::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      auto busy = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.req != nullptr; });
      };
      cv_.wait(lk, [&] { return stop_ || !queue_.empty() || busy(); });
      if (stop_) return;
      admit();
    }
    auto prefilling = [&] {
      return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.req && s.prefilling; });
    };
    if (interleave_prefill_) {
      step(true);
    } else {
      while (prefilling()) step(false);
      step(true);
    }
    std::lock_guard<std::mutex> lk(mu_);
    stats_.active = int(std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.req != nullptr; }));
    stats_.kv_cells_used = 0;
    for (const Slot& s : slots_)
      if (s.req) stats_.kv_cells_used += s.pos;
    stats_.kv_cells_total = cache_.capacity_tokens();
    stats_.kv_bytes = cache_.bytes() + (draft_cache_ ? draft_cache_->bytes() : 0);
    stats_.kv_budget_bytes = kv_budget_bytes();
    stats_.kv_blocks_cached = cache_.blocks_cached();
  }
}

int Engine::reuse_prefix(int i, const std::vector<int>& prompt) {
  Slot& s = slots_[size_t(i)];
  if (!prefix_cache_) {
    cache_.release(i);
    s.cached.clear();
    return 0;
  }
  // Reuse the common prefix, but compute at least the prompt's last token: its logits give the
  // first sampled token.
  const int limit = int(prompt.size()) - 1;
  const size_t n = std::min(s.cached.size(), size_t(limit));
  const int own = int(std::mismatch(prompt.begin(), prompt.begin() + long(n), s.cached.begin()).first - prompt.begin());
  const int blocks = cache_.match_prefix(prompt.data(), limit);
  int reused;
  if (blocks * KVCache::kBlockSize > own) {  // cached blocks reach further than the slot's own tokens
    cache_.release(i);
    reused = cache_.attach_prefix(i, prompt.data(), blocks) * KVCache::kBlockSize;
  } else {
    reused = cache_.truncate(i, own);
  }
  s.cached.assign(prompt.begin(), prompt.begin() + reused);  // what its blocks hold, should it wait
  return reused;
}

int Engine::outstanding_blocks() const {
  int n = 0;
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].req) n += std::max(0, slots_[i].reserve - cache_.blocks_held(int(i)));
  return n;
}

void Engine::admit() {
  while (!queue_.empty()) {
    const std::shared_ptr<EngineRequest>& r = queue_.front();
    const int i = pick_slot(r->prompt);
    if (i < 0) break;
    const int reused = reuse_prefix(i, r->prompt);
    // Blocks for every position it may store (drafts beyond the last token too), at most a context.
    const long most = long(r->prompt.size()) + std::max(0, r->max_tokens) + (spec_ ? spec_->max_draft : 0);
    const int reserve = KVCache::blocks_for(std::min<long>(most, cache_.ctx()));
    auto fits = [&] { return cache_.blocks_available() - outstanding_blocks() >= reserve - cache_.blocks_held(i); };
    while (!fits()) {  // free slots give their blocks back, the longest idle first
      int oldest = -1;
      for (size_t j = 0; j < slots_.size(); ++j)
        if (int(j) != i && !slots_[j].req && cache_.blocks_held(int(j)) > 0 &&
            (oldest < 0 || slots_[j].finished < slots_[size_t(oldest)].finished))
          oldest = int(j);
      if (oldest < 0) break;
      cache_.release(oldest);
      slots_[size_t(oldest)].cached.clear();
    }
    if (!fits()) {
      const bool running = std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.req != nullptr; });
      if (running) break;  // waits for blocks the running requests give back
      // Nothing runs and it still does not fit: cannot happen (the context is at most the
      // budget), but never wait for nothing.
      if (r->on_finish) r->on_finish("error: the KV cache budget cannot hold this request", int(r->prompt.size()), 0);
      queue_.pop_front();
      continue;
    }
    Slot& s = slots_[size_t(i)];
    std::vector<int> dtokens = std::move(s.dtokens);  // the draft cache's sequence outlives requests
    s = Slot{};
    s.dtokens = std::move(dtokens);
    s.req = std::move(queue_.front());
    queue_.pop_front();
    s.sampler = std::make_unique<Sampler>(s.req->sampling);
    s.history = s.req->prompt;
    if (spec_ && !s.req->constraint && s.req->top_logprobs < 0) {
      s.speculate = true;
      s.pace = DraftPace(spec_->max_draft);
      if (draft_cache_) {
        SamplingParams dp = s.req->sampling;
        dp.seed ^= 0x5eed5eed5eed5eedull;  // the draft's own stream, as generate_speculative's
        s.draft_sampler = std::make_unique<Sampler>(dp);
        reuse_draft_prefix(i);
      }
    }
    s.admitted = admissions_++;
    s.reserve = reserve;
    s.pos = reused;
    if (s.req->max_tokens <= 0) {
      finish(s, "length");  // keeps the reusable prefix cached
      continue;
    }
    s.prefilling = true;
    stats_.prefix_reused_tokens += s.pos;
  }
  stats_.queued = int(queue_.size());
}

int Engine::pick_slot(const std::vector<int>& prompt) const {
  int best = -1;
  long best_score = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.req) continue;
    const size_t n = std::min(s.cached.size(), prompt.size());
    const long reused = std::mismatch(prompt.begin(), prompt.begin() + long(n), s.cached.begin()).first - prompt.begin();
    const long score = reused - (long(s.cached.size()) - reused);
    if (best < 0 || score > best_score) best = int(i), best_score = score;
  }
  return best;
}

void Engine::finish(Slot& s, const std::string& reason) {
  const int i = int(&s - slots_.data());
  if (s.req->on_finish) s.req->on_finish(reason, int(s.req->prompt.size()), s.generated);
  // What the blocks hold: the fed tokens, unless a forward pass failed midway. Positions past
  // them (a speculative run's rejected drafts) are dropped.
  s.cached.clear();
  if (prefix_cache_ && reason.rfind("error", 0) != 0) {
    const int n = cache_.truncate(i, std::min(s.pos, int(s.history.size())));
    s.cached.assign(s.history.begin(), s.history.begin() + n);
    cache_.publish(i, s.cached.data(), n);
  } else {
    cache_.release(i);
  }
  s.finished = finishes_++;
  s.req.reset();
  s.sampler.reset();
}

bool Engine::accept(Slot& s, float* logits) {
  EngineRequest& r = *s.req;
  if (r.cancelled) {
    finish(s, "cancelled");
    return false;
  }
  int id;
  try {
    if (r.constraint) r.constraint->mask(logits, model_.config().vocab_size);
    id = s.sampler->sample(logits, model_.config().vocab_size, s.history);
    if (r.constraint && std::find(r.stop_ids.begin(), r.stop_ids.end(), id) == r.stop_ids.end())
      r.constraint->accept(id);
  } catch (const std::exception& e) {
    finish(s, std::string("error: ") + e.what());
    return false;
  }
  return deliver(s, id, logits);
}

bool Engine::deliver(Slot& s, int id, const float* logits) {
  EngineRequest& r = *s.req;
  if (std::find(r.stop_ids.begin(), r.stop_ids.end(), id) != r.stop_ids.end()) {
    finish(s, "stop");
    return false;
  }
  ++s.generated;
  s.history.push_back(id);
  if (logits && r.top_logprobs >= 0 && r.on_logprob) {
    TokenLogprob lp;
    token_logprobs(logits, model_.config().vocab_size, id, r.top_logprobs, lp);
    r.on_logprob(lp);
  }
  if (r.on_token && !r.on_token(id)) {
    finish(s, r.cancelled ? "cancelled" : "stop");
    return false;
  }
  if (s.generated >= r.max_tokens || s.pos >= cache_.ctx()) {  // no room to feed it
    finish(s, "length");
    return false;
  }
  s.next = id;
  return true;
}

// Short prompts share one forward pass instead of each streaming the weights alone, and a long
// one is cut into chunks that ride along with the decoding rows.
void Engine::step(bool decode) {
  Batch b;
  std::vector<int> decoding, prompts;  // slots with a decoding row / a prompt chunk in b
  std::vector<int> taken;              // prompt tokens each of `prompts` feeds
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (!s.req) continue;
    if (s.req->cancelled) {
      finish(s, "cancelled");
      continue;
    }
    if (decode && !s.prefilling) decoding.push_back(int(i));
  }
  const auto t0 = std::chrono::steady_clock::now();  // the draft model's passes count too
  // A decoding slot's row, then its guesses (speculative decoding): logits for each.
  if (spec_) make_guesses(decoding);
  for (int i : decoding) {
    Slot& s = slots_[size_t(i)];
    b.add(s.next, s.pos, i, true);
    for (size_t k = 0; k < s.guess.size(); ++k) b.add(s.guess[k], s.pos + 1 + int(k), i, true);
  }
  std::vector<int> order;
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].req && slots_[i].prefilling) order.push_back(int(i));
  std::sort(order.begin(), order.end(), [&](int a, int c) { return slots_[a].admitted < slots_[c].admitted; });
  // While others decode, smaller chunks: a step's time is their gap between two tokens, and a
  // chunk late in a long prompt costs more (its attention spans the whole prefix).
  // Guesses do not count: a prompt's chunks never depend on what others guess.
  const int decode_rows = b.size();
  const int n_dec = int(decoding.size());
  const int chunk = prefill_chunk_ > 0 ? prefill_chunk_ : std::max(kMinPrefillChunk, n_dec);
  const int budget = decoding.empty() ? n_batch_ : std::min(n_batch_, n_dec + chunk);
  int room = budget - n_dec;
  for (int i : order) {
    if (room <= 0) break;
    Slot& s = slots_[size_t(i)];
    const auto& p = s.req->prompt;
    const int n = std::min(int(p.size()) - s.pos, room);
    room -= n;
    for (int j = s.pos; j < s.pos + n; ++j) b.add(p[size_t(j)], j, i, j + 1 == int(p.size()));
    prompts.push_back(i);
    taken.push_back(n);
  }
  if (draft_cache_) draft_prefill(prompts, taken);
  if (b.size() == 0) return;
  try {
    model_.forward(b, cache_, logits_);
  } catch (const std::exception& e) {
    for (int i : decoding) finish(slots_[size_t(i)], std::string("error: ") + e.what());
    for (int i : prompts) finish(slots_[size_t(i)], std::string("error: ") + e.what());
    return;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Logits come in batch order: the decoding rows, then the prompts that ended.
  const size_t V = size_t(model_.config().vocab_size);
  size_t row = 0;
  SpeculativeStats spec;
  for (int i : decoding) {
    Slot& s = slots_[size_t(i)];
    const size_t rows = 1 + s.guess.size();
    if (s.guess.empty()) {
      ++s.pos;
      accept(s, &logits_[row * V]);
    } else {
      verify(s, &logits_[row * V], spec);
    }
    row += rows;
  }
  long fed = 0;
  for (size_t k = 0; k < prompts.size(); ++k) {
    Slot& s = slots_[size_t(prompts[k])];
    s.pos += taken[k];
    fed += taken[k];
    if (s.pos == int(s.req->prompt.size())) {
      s.prefilling = false;
      accept(s, &logits_[row++ * V]);
    }
  }
  // Full blocks of running sequences are published at once: a request sharing their start (a
  // system prompt) maps them while they still run.
  if (prefix_cache_)
    for (size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].req) cache_.publish(int(i), slots_[i].history.data(), std::min(slots_[i].pos, int(slots_[i].history.size())));
  std::lock_guard<std::mutex> lk(mu_);
  spec_stats_.steps += spec.steps, spec_stats_.drafted += spec.drafted, spec_stats_.accepted += spec.accepted;
  if (fed > 0) {
    stats_.prefill_tokens += fed;
    stats_.prefill_seconds += secs;
  } else {
    ++stats_.steps;
    stats_.decode_rows += decode_rows;
    stats_.decode_seconds += secs;
  }
}

}  // namespace camelid
