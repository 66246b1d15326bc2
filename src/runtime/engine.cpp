#include "runtime/engine.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace camelid {

Engine::Engine(Llama& model, int n_slots, int ctx_per_slot, int n_batch)
    : model_(model),
      cache_(model.config(), n_slots, std::min(ctx_per_slot, model.config().max_seq_len), model.kv_type()),
      n_batch_(n_batch),
      slots_(n_slots) {
  thread_ = std::thread([this] { loop(); });
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
  return stats_;
}

void Engine::loop() {
  for (;;) {
    std::vector<int> admitted;
    {
      std::unique_lock<std::mutex> lk(mu_);
      auto busy = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.req != nullptr; });
      };
      cv_.wait(lk, [&] { return stop_ || !queue_.empty() || busy(); });
      if (stop_) return;
      for (size_t i = 0; i < slots_.size() && !queue_.empty(); ++i) {
        if (slots_[i].req) continue;
        Slot& s = slots_[i];
        s = Slot{};
        s.req = std::move(queue_.front());
        queue_.pop_front();
        admitted.push_back(int(i));
      }
      stats_.queued = int(queue_.size());
    }
    if (!admitted.empty()) prefill(admitted);
    decode_step();
    std::lock_guard<std::mutex> lk(mu_);
    stats_.active = int(std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.req != nullptr; }));
  }
}

void Engine::finish(Slot& s, const std::string& reason) {
  if (s.req->on_finish) s.req->on_finish(reason, int(s.req->prompt.size()), s.generated);
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
  if (std::find(r.stop_ids.begin(), r.stop_ids.end(), id) != r.stop_ids.end()) {
    finish(s, "stop");
    return false;
  }
  ++s.generated;
  s.history.push_back(id);
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

// New prompts are packed together into forward passes of up to n_batch tokens: short prompts
// then share one matmul instead of each streaming the weights alone. Rows are computed
// independently (batch-invariant kernels), so packing does not change any result.
void Engine::prefill(const std::vector<int>& admitted) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int> todo;
  for (int i : admitted) {
    Slot& s = slots_[i];
    s.sampler = std::make_unique<Sampler>(s.req->sampling);
    s.history = s.req->prompt;
    if (s.req->max_tokens <= 0) finish(s, "length");
    else todo.push_back(i);
  }
  const int V = model_.config().vocab_size;
  size_t cur = 0, off = 0;  // next prompt to feed and how much of it is already in the cache
  long fed = 0;
  Batch b;
  while (cur < todo.size()) {
    b.clear();
    std::vector<int> touched, ends;  // slots in this batch; those whose prompt ends in it
    while (cur < todo.size() && b.size() < n_batch_) {
      Slot& s = slots_[todo[cur]];
      if (s.req->cancelled) {
        finish(s, "cancelled");
        ++cur, off = 0;
        continue;
      }
      const auto& p = s.req->prompt;
      const size_t take = std::min(p.size() - off, size_t(n_batch_ - b.size()));
      for (size_t j = off; j < off + take; ++j) b.add(p[j], int(j), todo[cur], j + 1 == p.size());
      touched.push_back(todo[cur]);
      off += take;
      if (off == p.size()) ends.push_back(todo[cur]), ++cur, off = 0;
    }
    if (b.size() == 0) break;
    try {
      model_.forward(b, cache_, logits_);
    } catch (const std::exception& e) {
      for (int i : touched)
        if (slots_[i].req) finish(slots_[i], std::string("error: ") + e.what());
      if (ends.empty() || ends.back() != touched.back()) ++cur, off = 0;  // the unfinished prompt failed too
      continue;
    }
    fed += b.size();
    for (size_t k = 0; k < ends.size(); ++k) {
      Slot& s = slots_[ends[k]];
      s.pos = int(s.req->prompt.size());
      accept(s, &logits_[k * size_t(V)]);
    }
  }
  std::lock_guard<std::mutex> lk(mu_);
  stats_.prefill_tokens += fed;
  stats_.prefill_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Engine::decode_step() {
  Batch b;
  std::vector<int> rows;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (!s.req) continue;
    if (s.req->cancelled) {
      finish(s, "cancelled");
      continue;
    }
    b.add(s.next, s.pos, int(i), true);
    rows.push_back(int(i));
  }
  if (rows.empty()) return;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    model_.forward(b, cache_, logits_);
  } catch (const std::exception& e) {
    for (int i : rows) finish(slots_[i], std::string("error: ") + e.what());
    return;
  }
  const int V = model_.config().vocab_size;
  for (size_t k = 0; k < rows.size(); ++k) {
    Slot& s = slots_[rows[k]];
    ++s.pos;
    accept(s, &logits_[k * V]);
  }
  std::lock_guard<std::mutex> lk(mu_);
  ++stats_.steps;
  stats_.decode_rows += long(rows.size());
  stats_.decode_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace camelid
