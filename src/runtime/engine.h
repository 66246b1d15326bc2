#pragma once
// Continuous batching: up to n_slots sequences share one model. Each step is ONE forward pass
// (weights are read once for all its rows): every decoding sequence's newest token, then chunks of
// the prompts being prefilled, up to n_batch tokens in all. A long prompt is thus prefilled a
// chunk per step while the other sequences keep decoding, instead of stalling them (chunked
// prefill). New requests are admitted between steps; a finished or cancelled request frees its
// slot at once.
//
// Determinism: a request's tokens depend only on its prompt and sampling parameters, never on what
// else is running: every row of a forward pass is computed exactly as it would be alone, in any
// batch and any chunking (batch-invariant kernels), and each request has its own seeded sampler.
//
// Prefix cache: a slot keeps the keys and values of its last sequence after it finishes. A new
// request goes to the free slot whose cached tokens share the longest prefix with its prompt,
// and only the rest of the prompt is computed (the previous turns of a chat, a shared system
// prompt). Rows are batch- and chunk-invariant, so reusing them changes no result.
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
  // >= 0: on_logprob reports each generated token's logprob and this many alternatives (from the
  // distribution after penalties and bias, at temperature 1), just before on_token.
  int top_logprobs = -1;
  std::function<void(const TokenLogprob&)> on_logprob;

  // Run on the engine thread; keep them short. on_token returns false to stop (e.g. a stop string
  // matched); on_finish is called exactly once, with "stop", "length", "cancelled" or "error: ...".
  std::function<bool(int token)> on_token;
  std::function<void(const std::string& finish_reason, int prompt_tokens, int completion_tokens)> on_finish;

  std::atomic<bool> cancelled{false};  // set from any thread (client went away)
};

struct EngineStats {
  // steps, decode_rows and decode_seconds count decode-only steps; a step that also prefills
  // counts as prefill (its rows and time are not split).
  long steps = 0, decode_rows = 0, prefill_tokens = 0;
  long prefix_reused_tokens = 0;  // prompt tokens whose keys/values came from the prefix cache
  double decode_seconds = 0, prefill_seconds = 0;  // time inside the forward passes of each phase
  int active = 0, queued = 0;
  long kv_cells_used = 0, kv_cells_total = 0;  // positions held in the cache / its capacity
};

class Engine {
 public:
  // interleave_prefill false: prompts are prefilled whole before the next decode step (the
  // behaviour before chunked prefill; kept for measuring it).
  Engine(Llama& model, int n_slots, int ctx_per_slot, int n_batch = 256, bool prefix_cache = true,
         bool interleave_prefill = true);
  ~Engine();

  // The engine thread runs its forward passes with as many OpenMP threads as the constructing
  // thread had (omp_set_num_threads is per thread: a new thread would get the default).
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
    bool prefilling = false;  // pos < prompt size: its prompt is still being fed
    long admitted = 0;        // admission order: prompts are prefilled first come, first served
    std::vector<int> cached;  // free slot: the tokens at positions [0, size) of its cache rows
  };
  // The free slot for a prompt: the most cached tokens reused, the fewest thrown away.
  int pick_slot(const std::vector<int>& prompt) const;

  void loop();
  // Admits queued requests into free slots (under mu_).
  void admit();
  // One forward pass: decoding rows (if `decode`) and then prompt chunks, n_batch tokens at most.
  void step(bool decode);
  // Samples from logits, reports the token and returns false when the slot finished.
  bool accept(Slot& s, float* logits);
  void finish(Slot& s, const std::string& reason);

  Llama& model_;
  KVCache cache_;
  int n_batch_;
  bool prefix_cache_, interleave_prefill_;
  long admissions_ = 0;
  std::vector<Slot> slots_;
  std::vector<float> logits_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<EngineRequest>> queue_;
  EngineStats stats_;
  bool stop_ = false;
  int omp_threads_;
  std::thread thread_;
};

}  // namespace camelid
