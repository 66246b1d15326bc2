#pragma once
// One sequence through the model: feeds prompt tokens in chunks (prefill), then one token at a
// time (decode), and the loops built on that: generation and perplexity.
#include <algorithm>
#include <functional>
#include <memory>
#include <vector>

#include "model/llama.h"
#include "runtime/sampler.h"
#include "runtime/token_constraint.h"

namespace camelid {

class Session {
 public:
  // ctx: KV cache positions (clamped to the model's max_position_embeddings).
  Session(Llama& model, int ctx, int n_batch = 256);
  // A view of sequence `seq` of a cache owned elsewhere (the engine's), whose first `pos`
  // positions are already filled; the cache must outlive the session.
  Session(Llama& model, KVCache& cache, int seq, int pos, int n_batch = 256);

  // Appends tokens at the current position. When all_logits is set, returns logits for every
  // token ([n, vocab]); otherwise only the last token's ([vocab]).
  const std::vector<float>& feed(const std::vector<int>& tokens, bool all_logits = false);

  int pos() const { return pos_; }
  int ctx() const { return cache_->ctx(); }
  void reset() { pos_ = 0; }
  // Forgets everything after the first n tokens (they stay valid in the cache).
  void rewind(int n) { pos_ = std::max(0, std::min(n, pos_)); }
  Llama& model() { return model_; }

 private:
  Llama& model_;
  std::unique_ptr<KVCache> own_;
  KVCache* cache_;
  int seq_ = 0;
  int n_batch_;
  int pos_ = 0;
  Batch batch_;
  std::vector<float> chunk_logits_, logits_;
};

struct GenerateOptions {
  int max_new_tokens = 128;
  SamplingParams sampling;
  bool stop_at_eos = true;   // any of the config's eos ids ends the generation
  std::shared_ptr<TokenConstraint> constraint;  // optional: masks the logits, told each token
};

struct GenerateResult {
  std::vector<int> ids;       // generated tokens (the eos that stopped it is not included)
  std::string finish_reason;  // "stop" (eos or callback) or "length"
};

// on_token returns false to stop early.
GenerateResult generate(Session& s, const std::vector<int>& prompt, const GenerateOptions& opt,
                        const std::function<bool(int)>& on_token = {});

struct PerplexityResult {
  int tokens = 0;      // predicted tokens (ids.size() - 1; windows: those scored)
  double mean_nll = 0;
  double ppl = 0;
  int chunks = 0;      // windows only: windows evaluated, each n_ctx tokens
  int scored_from = 0; // windows only: the first position of a window that is scored
};
PerplexityResult perplexity(Llama& model, const std::vector<int>& ids, int n_batch = 256);

// llama-perplexity's method, for texts longer than a context: ids cut into ids.size() / n_ctx
// windows of n_ctx tokens (the rest dropped), each evaluated on its own from an empty cache,
// its first token replaced by bos_id (when >= 0); only the predictions of the second half count
// (positions n_ctx/2 .. n_ctx-2, so n_ctx - 1 - n_ctx/2 tokens per window).
PerplexityResult perplexity_windows(Llama& model, const std::vector<int>& ids, int n_ctx, int bos_id, int n_batch = 256);

}  // namespace camelid
