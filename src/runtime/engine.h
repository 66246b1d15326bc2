#pragma once
// Continuous batching: up to n_slots sequences share one model. Each step, every decoding sequence
// contributes its newest token to ONE batched forward pass (weights are read once for all of them);
// new requests are admitted between steps and prefilled on their own; a finished or cancelled
// request frees its slot at once.
//
// Determinism: a request's tokens depend only on its prompt and sampling parameters, never on what
// else is running: prompts are prefilled alone, in the same chunks as when alone, every row of a
// batched decode is computed exactly like a single-row one, and each request has its own seeded
// sampler.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/llama.h"
#include "runtime/sampler.h"
#include "runtime/token_constraint.h"

namespace camelid {

struct EngineRequest {
  std::vector<int> prompt;
  int max_tokens = 16;
  SamplingParams sampling;
  std::vector<int> stop_ids;  // tokens that end the generation (not reported)
  std::shared_ptr<TokenConstraint> constraint;  // optional: grammar / JSON schema (its errors end the request)

  // Run on the engine thread; keep them short. on_token returns false to stop (e.g. a stop string
  // matched); on_finish is called exactly once, with "stop", "length", "cancelled" or "error: ...".
  std::function<bool(int token)> on_token;
  std::function<void(const std::string& finish_reason, int prompt_tokens, int completion_tokens)> on_finish;

  std::atomic<bool> cancelled{false};  // set from any thread (client went away)
};

struct EngineStats {
  long steps = 0, decode_rows = 0, prefill_tokens = 0;
  double decode_seconds = 0, prefill_seconds = 0;  // time inside the forward passes of each phase
  int active = 0, queued = 0;
};

class Engine {
 public:
  Engine(Llama& model, int n_slots, int ctx_per_slot, int n_batch = 256);
  ~Engine();

  // Queues a request; throws Error if its prompt cannot fit in a slot's context.
  void submit(std::shared_ptr<EngineRequest> req);
  EngineStats stats();
  int n_slots() const { return int(slots_.size()); }
  int ctx() const { return cache_.ctx(); }

 private:
  struct Slot {
    std::shared_ptr<EngineRequest> req;
    std::unique_ptr<Sampler> sampler;
    std::vector<int> history;
    int pos = 0;         // tokens in the cache
    int generated = 0;
    int next = -1;       // sampled token not yet fed
  };

  void loop();
  void prefill(const std::vector<int>& slot_indices);
  void decode_step();
  // Samples from logits, reports the token and returns false when the slot finished.
  bool accept(Slot& s, float* logits);
  void finish(Slot& s, const std::string& reason);

  Llama& model_;
  KVCache cache_;
  int n_batch_;
  std::vector<Slot> slots_;
  std::vector<float> logits_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<EngineRequest>> queue_;
  EngineStats stats_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace camelid
