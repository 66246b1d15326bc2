#pragma once
// The Llama forward pass over a batch of (token, position, sequence) entries: a whole prompt
// (prefill), one new token (decode), or one token for each of several sequences (batched decode).
#include <memory>
#include <vector>

#include "model/kv_cache.h"
#include "model/weights.h"

namespace camelid {

struct Batch {
  std::vector<int> tokens, pos, seq;
  std::vector<char> want_logits;

  void add(int token, int position, int seq_id, bool logits) {
    tokens.push_back(token);
    pos.push_back(position);
    seq.push_back(seq_id);
    want_logits.push_back(logits);
  }
  int size() const { return int(tokens.size()); }
  void clear() { tokens.clear(), pos.clear(), seq.clear(), want_logits.clear(); }
};

class Llama {
 public:
  explicit Llama(std::shared_ptr<const ModelWeights> weights);

  const ModelConfig& config() const { return w_->config; }
  // The type KV caches made for this model use (Session, Engine): f32, f16 or q8_0.
  DType kv_type() const { return kv_type_; }
  void set_kv_type(DType t) { kv_type_ = t; }
  const ModelWeights& weights() const { return *w_; }
  // Throws Error unless `id` can be fed: in the vocabulary, and its embedding row finite (a corrupt
  // checkpoint's NaN/Inf rows are refused here and never predicted, so no batch ever holds one).
  void check_token(int id) const;

  // Runs every entry of the batch through the model, writing its keys/values to the cache at
  // (seq, pos). Entries of one sequence must come in increasing position order and all earlier
  // positions of that sequence must already be in the cache or earlier in the batch.
  // logits receives [n, vocab] for the n entries with want_logits, in batch order.
  void forward(const Batch& batch, KVCache& cache, std::vector<float>& logits);

 private:
  void attention(const Batch& b, KVCache& cache, int layer);

  std::shared_ptr<const ModelWeights> w_;
  std::vector<float> inv_freq_;
  DType kv_type_ = DType::F32;
  // Activations, resized to the batch: [T, dim], [T, q_dim], [T, kv_dim], [T, hidden].
  std::vector<float> x_, xb_, xb2_, q_, k_, v_, att_, hb_, hb2_;
};

}  // namespace camelid
