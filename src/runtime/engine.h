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
// Paged KV cache: the slots share a pool of blocks (KVCache) that grows with the positions held,
// up to a budget. A request is admitted when the blocks it may need (prompt + max_tokens, at most
// the context) are free or can be freed, else it waits in the queue (first come, first served);
// the context is at most the budget, so every request can run once those before it finished.
//
// Prefix cache: a slot keeps the blocks of its last sequence after it finishes, and every full
// block of a running or finished sequence is published under its tokens. A new request goes to
// the free slot whose cached tokens share the longest prefix with its prompt, or maps the cached
// blocks that start its prompt (a system prompt another request computed) when they reach
// further; only the rest of the prompt is computed. Free slots give their blocks back when the
// pool needs room (cached blocks are evicted least recently used first). Rows are batch- and
// chunk-invariant, so reusing them changes no result.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "model/llama.h"
#include "runtime/sampler.h"
#include "runtime/speculative.h"
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
  // counts as prefill (its rows and time are not split). Speculative guesses count as rows.
  long steps = 0, decode_rows = 0, prefill_tokens = 0;
  long prefix_reused_tokens = 0;  // prompt tokens whose keys/values came from the prefix cache
  double decode_seconds = 0, prefill_seconds = 0;  // time inside the forward passes of each phase
  int active = 0, queued = 0;
  long kv_cells_used = 0, kv_cells_total = 0;  // positions held by active generations / the budget's positions
  size_t kv_bytes = 0, kv_budget_bytes = 0;    // the pools' blocks allocated now / at most (a draft model's too)
  long kv_blocks_cached = 0;                   // published blocks no sequence maps (evictable)
};

class Engine {
 public:
  // interleave_prefill false: prompts are prefilled whole before the next decode step (the
  // behaviour before chunked prefill; kept for measuring it).
  // kv_budget_tokens: positions the KV cache may hold over all slots (0: n_slots x ctx_per_slot);
  // the context is clamped to it.
  // prefill_chunk: prompt tokens per step while other sequences decode (0: as many as they have
  // rows, at least 16, so a step at most doubles their gap between two tokens).
  Engine(Llama& model, int n_slots, int ctx_per_slot, int n_batch = 256, bool prefix_cache = true,
         bool interleave_prefill = true, long kv_budget_tokens = 0, int prefill_chunk = 0);
  ~Engine();

  // The engine thread runs its forward passes with as many OpenMP threads as the constructing
  // thread had (omp_set_num_threads is per thread: a new thread would get the default).
  // Queues a request; throws Error if its prompt cannot fit in a slot's context.
  void submit(std::shared_ptr<EngineRequest> req);
  EngineStats stats();
  int n_slots() const { return int(slots_.size()); }

  // Speculative decoding (a draft model or prompt lookup), for any number of slots: in each step,
  // every decoding sequence without a grammar or logprobs adds its guesses to its row in the one
  // forward pass, and keeps those the model agrees with (verify_guesses: greedy output identical to
  // plain decoding, sampled output with the same law); its cache then drops the positions
  // rejected. A sequence's guesses depend only on its own tokens (prompt lookup over its prompt
  // and output; the draft model's rows are batch-invariant too, and its sampler is seeded per
  // request), so its output still never depends on what else runs. A draft model has its own
  // paged cache, one sequence per slot (held across requests, like the prefix cache), and drafts
  // for all slots at once: one forward pass per guess position. Guesses per step are at most
  // max_draft and n_batch / slots - 1 (at least 1). Call before submitting requests;
  // throws Error when the options are out of range or the draft's vocabulary differs.
  void enable_speculative(const SpeculativeOptions& spec);
  // steps: a sequence's verification passes (those with guesses); drafted / accepted: guesses.
  SpeculativeStats speculative_stats();
  int ctx() const { return cache_.ctx(); }
  long kv_capacity_tokens() const { return cache_.capacity_tokens(); }
  size_t kv_budget_bytes() const { return cache_.budget_bytes() + (draft_cache_ ? draft_cache_->budget_bytes() : 0); }

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
    long finished = 0;        // free slot: when its last request ended (the oldest gives its blocks back first)
    int reserve = 0;          // blocks its request may hold in all
    std::vector<int> cached;  // free slot: the tokens at positions [0, size) of its blocks
    // Speculative decoding.
    bool speculate = false;                  // its request takes guesses (no grammar, no logprobs)
    std::unique_ptr<Sampler> draft_sampler;  // draft model: the draft's own seeded stream
    std::vector<int> dtokens;    // draft model: the tokens its draft cache sequence holds (kept when it finishes)
    DraftPace pace;              // how far it guesses now (adapts to the guesses it gets kept)
    std::vector<int> guess;      // this step's guesses
    std::vector<TokenDist> q;    // their draft distributions (empty: prompt lookup)
  };
  // The free slot for a prompt: the most cached tokens reused, the fewest thrown away.
  int pick_slot(const std::vector<int>& prompt) const;

  void loop();
  // Admits queued requests into free slots while the pool has room (under mu_).
  void admit();
  // Prepares slot i's blocks for a prompt (reuses what it holds or the cached blocks that start
  // it) and returns the positions reused.
  int reuse_prefix(int i, const std::vector<int>& prompt);
  // Blocks the active slots may still allocate.
  int outstanding_blocks() const;
  // One forward pass: decoding rows (if `decode`) and then prompt chunks, n_batch tokens at most.
  void step(bool decode);
  // Speculative decoding (engine_speculative.cpp). Fills the guesses of the decoding slots that
  // speculate (the draft model's passes run here); plain ones get none.
  void make_guesses(const std::vector<int>& decoding);
  // Draft model: feeds it the prompt chunks of this step (as many tokens as the model gets, so a
  // long prompt's draft prefill rides along instead of stalling a step; what is left is fed
  // before its first guesses).
  void draft_prefill(const std::vector<int>& prompts, const std::vector<int>& taken);
  // Draft model: the guesses of several slots, each with up to room[k] of them.
  void draft_guesses(const std::vector<int>& slots, const std::vector<int>& room);
  // Keeps what the model agrees with from rows [1 + guesses, vocab] and reports the tokens;
  // drops the rejected positions from the caches.
  void verify(Slot& s, const float* logits, SpeculativeStats& st);
  // Draft model: a new prompt in slot i keeps the draft cache's positions it shares.
  void reuse_draft_prefix(int i);
  // Samples from logits, reports the token and returns false when the slot finished.
  bool accept(Slot& s, float* logits);
  // Reports a chosen token (stop ids, max_tokens, callbacks); logits (optional) for logprobs.
  bool deliver(Slot& s, int id, const float* logits);
  void finish(Slot& s, const std::string& reason);

  Llama& model_;
  KVCache cache_;
  int n_batch_, prefill_chunk_;
  bool prefix_cache_, interleave_prefill_;
  long admissions_ = 0, finishes_ = 0;
  std::vector<Slot> slots_;
  std::vector<float> logits_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<EngineRequest>> queue_;
  EngineStats stats_;
  bool stop_ = false;
  std::optional<SpeculativeOptions> spec_;  // set before any request; read on the engine thread
  std::unique_ptr<KVCache> draft_cache_;    // draft model: one sequence per slot
  std::vector<float> draft_logits_;
  VerifyScratch verify_scratch_;
  SpeculativeStats spec_stats_;             // under mu_
  int omp_threads_;
  std::thread thread_;
};

}  // namespace camelid
