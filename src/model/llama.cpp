#include "model/llama.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "core/checked_size.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "model/lora.h"
#include "model/ops.h"

namespace camelid {

Llama::Llama(std::shared_ptr<const ModelWeights> weights)
    : w_(std::move(weights)), inv_freq_(w_->config.rope_inv_freq()) {
  if (w_->config.num_labels > 0)
    fail(w_->source, ": a reward model (LlamaForSequenceClassification) scores text (generate --best-of N --reward) "
         "but has no language-model head to generate with");
}

void Llama::forward(const Batch& b, KVCache& cache, std::vector<float>& logits) {
  const ModelConfig& c = w_->config;
  const int T = b.size();
  if (T == 0) fail("forward: empty batch");
  for (int t = 0; t < T; ++t) {
    check_token(b.tokens[t]);
    if (b.pos[t] < 0 || b.pos[t] >= cache.ctx())
      fail("position ", b.pos[t], " is beyond the context size ", cache.ctx());
    if (b.seq[t] < 0 || b.seq[t] >= cache.n_seqs())
      fail("sequence ", b.seq[t], " is beyond the KV cache's ", cache.n_seqs(), " slots");
  }
  // Blocks for every row's position, before anything is computed: a full cache fails here.
  for (int t = 0; t < T; ++t) cache.prepare(b.seq[t], b.pos[t]);
  const int D = c.dim, Q = c.q_dim(), KV = c.kv_dim(), H = c.hidden_dim;
  x_.resize(size_t(T) * D), xb_.resize(size_t(T) * D), xb2_.resize(size_t(T) * D);
  q_.resize(size_t(T) * Q), att_.resize(size_t(T) * Q);
  k_.resize(size_t(T) * KV), v_.resize(size_t(T) * KV);
  hb_.resize(size_t(T) * H), hb2_.resize(size_t(T) * H);

  for (int t = 0; t < T; ++t)
    to_f32(w_->embed.dtype, w_->embed.row(b.tokens[t]), &x_[size_t(t) * D], D);

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = w_->layers[l];
    // Attention: x += Wo · attn(rope(Wq·n(x)), rope(Wk·n(x)), Wv·n(x))
    ops::rmsnorm(xb_.data(), x_.data(), static_cast<const float*>(L.attn_norm.data), T, D, c.norm_eps);
    linear(*w_, l, xb_.data(), T, {{LoraTarget::Q, q_.data()}, {LoraTarget::K, k_.data()}, {LoraTarget::V, v_.data()}});
    ops::rope(q_.data(), T, c.n_heads, c.head_dim, b.pos.data(), inv_freq_, c.rope_interleaved);
    ops::rope(k_.data(), T, c.n_kv_heads, c.head_dim, b.pos.data(), inv_freq_, c.rope_interleaved);
    for (int t = 0; t < T; ++t) cache.store(l, b.seq[t], b.pos[t], &k_[size_t(t) * KV], &v_[size_t(t) * KV]);
    attention(b, cache, l);                             // [T, Q]
    linear(*w_, l, att_.data(), T, {{LoraTarget::O, xb2_.data()}});  // [T, D]
    ops::add(x_.data(), xb2_.data(), x_.size());

    // Feed-forward: x += Wdown · (silu(Wgate·n(x)) * Wup·n(x))
    ops::rmsnorm(xb_.data(), x_.data(), static_cast<const float*>(L.ffn_norm.data), T, D, c.norm_eps);
    linear(*w_, l, xb_.data(), T, {{LoraTarget::Gate, hb_.data()}, {LoraTarget::Up, hb2_.data()}});  // [T, H] x2
    ops::silu_mul(hb_.data(), hb2_.data(), hb_.size());
    linear(*w_, l, hb_.data(), T, {{LoraTarget::Down, xb2_.data()}});  // [T, D]
    ops::add(x_.data(), xb2_.data(), x_.size());
  }

  // Final norm and classifier only for the rows whose logits are wanted.
  int n_out = 0;
  for (int t = 0; t < T; ++t) {
    if (!b.want_logits[t]) continue;
    std::copy_n(&x_[size_t(t) * D], D, &xb2_[size_t(n_out) * D]);
    ++n_out;
  }
  logits.resize(size_t(n_out) * c.vocab_size);
  if (n_out == 0) return;
  ops::rmsnorm(xb_.data(), xb2_.data(), static_cast<const float*>(w_->final_norm.data), n_out, D,
               c.norm_eps);
  kernels::matmul(xb_.data(), n_out, w_->lm_head, logits.data());  // [n_out, vocab]
  for (int id : w_->bad_embed_rows)  // tokens that could not be fed back are never predicted
    for (int r = 0; r < n_out; ++r) logits[size_t(r) * c.vocab_size + id] = -INFINITY;
}

void Llama::check_token(int id) const {
  if (id < 0 || id >= w_->config.vocab_size)
    fail("token id ", id, " is out of range (vocab size ", w_->config.vocab_size, ")");
  if (!w_->bad_embed_rows.empty() && std::binary_search(w_->bad_embed_rows.begin(), w_->bad_embed_rows.end(), id))
    fail("token id ", id, " cannot be used: its embedding row holds NaN/Inf (corrupt checkpoint)");
}

// Causal attention of each entry over its own sequence's cached positions 0..pos, with grouped
// query heads sharing a key/value head. Work goes in tiles: up to kTileTokens consecutive entries
// of one sequence x one kv head, so the group's query heads of all those tokens pass over each
// block of keys/values while it is in L1 (kernels::attend_rows); an f32 cache is read in place,
// block by block, and a non-f32 cache is widened once per tile rather than once per entry. Each
// row's arithmetic does not depend on the tile.
void Llama::attention(const Batch& b, KVCache& cache, int layer) {
  constexpr int kTileTokens = 16;
  const ModelConfig& c = w_->config;
  const int T = b.size(), hd = c.head_dim, group = c.n_heads / c.n_kv_heads;
  const float scale = 1.f / std::sqrt(float(hd));
  std::vector<int> tile_start;  // tile i: entries [tile_start[i], tile_start[i + 1])
  for (int t = 0; t < T; ++t)
    if (t == 0 || b.seq[t] != b.seq[t - 1] || t - tile_start.back() == kTileTokens) tile_start.push_back(t);
  const int n_tiles = int(tile_start.size());
  tile_start.push_back(T);
#pragma omp parallel
  {
    std::vector<float> scores, ks, vs;
    std::vector<const float*> kb, vb;
    std::vector<kernels::AttendRow> rows;
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int i = 0; i < n_tiles; ++i) {
      for (int kvh = 0; kvh < c.n_kv_heads; ++kvh) {
        const int t0 = tile_start[i], t1 = tile_start[i + 1], seq = b.seq[t0];
        int n = 0;
        rows.clear();
        for (int t = t0; t < t1; ++t) {
          n = std::max(n, b.pos[t] + 1);
          for (int h = kvh * group; h < (kvh + 1) * group; ++h)
            rows.push_back({&q_[(size_t(t) * c.n_heads + h) * hd], &att_[(size_t(t) * c.n_heads + h) * hd], b.pos[t] + 1});
        }
        scores.resize(rows.size() * size_t(n));
        kernels::KVRows kr, vr;
        if (cache.keys_in_place(layer, seq, kvh, n, kb, kr) && cache.values_in_place(layer, seq, kvh, n, vb, vr)) {
          kernels::attend_rows_paged(rows.data(), int(rows.size()), kr, vr, hd, scale, scores.data());
        } else {
          size_t ldk = 0, ldv = 0;
          const float* k = cache.keys(layer, seq, kvh, n, ks, ldk);
          const float* v = cache.values(layer, seq, kvh, n, vs, ldv);
          kernels::attend_rows(rows.data(), int(rows.size()), k, v, ldk, hd, scale, scores.data());
        }
      }
    }
  }
}

}  // namespace camelid
