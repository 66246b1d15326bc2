#include "model/llama_train.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/kernels.h"
#include "model/ops.h"
#include "model/ops_backward.h"
#include "model/tensor_names.h"

namespace camelid {

namespace {
float* grad_of(ParamSet* ps, const std::string& name) {  // null: the base is frozen (LoRA)
  if (!ps) return nullptr;
  Param& p = ps->at(name);
  return p.trainable ? p.grad.data() : nullptr;
}
const float* f32_data(const Tensor& t, const char* what) {
  if (t.dtype != DType::F32) fail("training: ", what, " must be f32 (is ", dtype_name(t.dtype), ")");
  return static_cast<const float*>(t.data);
}
}  // namespace

LlamaTrain::LlamaTrain(const ModelConfig& c) : c_(c), inv_freq_(c.rope_inv_freq()) {}

void LlamaTrain::forward(const ModelWeights& w, const int* tokens, int B, int T) {
  const ModelConfig& c = c_;
  if (B <= 0 || T <= 0) fail("training forward: empty batch");
  if (T > c.max_seq_len) fail("training: sequence length ", T, " exceeds the model's context ", c.max_seq_len);
  const int N = B * T, D = c.dim, Q = c.q_dim(), KV = c.kv_dim(), H = c.hidden_dim;
  B_ = B, T_ = T;
  tokens_.assign(tokens, tokens + N);
  pos_.resize(size_t(N));
  for (int i = 0; i < N; ++i) pos_[size_t(i)] = i % T;
  acts_.resize(size_t(c.n_layers));
  if (w.lora && w.lora->index.size() != size_t(c.n_layers))
    fail("training: the LoRA adapter has ", w.lora->index.size(), " layers, the model ", c.n_layers);
  dropout_ = {};
  if (w.lora && dropout_on_) dropout_ = {float(w.lora->config.dropout), dropout_seed_, n_forward_++};
  const LoraDropout* drop = &dropout_;

  std::vector<float> x(size_t(N) * D);
  for (int t = 0; t < N; ++t) {
    if (tokens[t] < 0 || tokens[t] >= c.vocab_size)
      fail("training: token id ", tokens[t], " is out of range (vocab size ", c.vocab_size, ")");
    to_f32(w.embed.dtype, w.embed.row(tokens[t]), &x[size_t(t) * D], size_t(D));
  }
  std::vector<float> tmp(size_t(N) * D);
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = w.layers[size_t(l)];
    LayerActs& a = acts_[size_t(l)];
    a.x = x;
    a.xn.resize(size_t(N) * D), a.r1.resize(size_t(N)), a.r2.resize(size_t(N));
    a.q.resize(size_t(N) * Q), a.k.resize(size_t(N) * KV), a.v.resize(size_t(N) * KV), a.att.resize(size_t(N) * Q);
    a.probs.resize(size_t(B) * c.n_heads * T * T);
    a.xn2.resize(size_t(N) * D), a.gate.resize(size_t(N) * H), a.up.resize(size_t(N) * H);
    // Attention: x2 = x + Wo · attn(rope(Wq·n(x)), rope(Wk·n(x)), Wv·n(x))
    ops::rmsnorm_save(a.xn.data(), a.r1.data(), x.data(), f32_data(L.attn_norm, "attn_norm"), N, D, c.norm_eps);
    using LT = LoraTarget;
    auto keep = [&](LT t) { return &a.lora_h[size_t(t)]; };
    linear(w, l, a.xn.data(), N, {{LT::Q, a.q.data(), keep(LT::Q)}, {LT::K, a.k.data(), keep(LT::K)},
                                  {LT::V, a.v.data(), keep(LT::V)}}, drop);
    ops::rope(a.q.data(), N, c.n_heads, c.head_dim, pos_.data(), inv_freq_, c.rope_interleaved);
    ops::rope(a.k.data(), N, c.n_kv_heads, c.head_dim, pos_.data(), inv_freq_, c.rope_interleaved);
    ops::attention_forward(a.q.data(), a.k.data(), a.v.data(), a.att.data(), a.probs.data(), B, T, c.n_heads,
                           c.n_kv_heads, c.head_dim);
    linear(w, l, a.att.data(), N, {{LT::O, tmp.data(), keep(LT::O)}}, drop);
    ops::add(x.data(), tmp.data(), x.size());
    a.x2 = x;
    // Feed-forward: x = x2 + Wdown · (silu(Wgate·n(x2)) * Wup·n(x2))
    ops::rmsnorm_save(a.xn2.data(), a.r2.data(), x.data(), f32_data(L.ffn_norm, "ffn_norm"), N, D, c.norm_eps);
    linear(w, l, a.xn2.data(), N, {{LT::Gate, a.gate.data(), keep(LT::Gate)}, {LT::Up, a.up.data(), keep(LT::Up)}}, drop);
    act_ = a.gate;
    ops::silu_mul(act_.data(), a.up.data(), act_.size());
    linear(w, l, act_.data(), N, {{LT::Down, tmp.data(), keep(LT::Down)}}, drop);
    ops::add(x.data(), tmp.data(), x.size());
  }
  xlast_ = std::move(x);
  xf_.resize(size_t(N) * D), rf_.resize(size_t(N));
  ops::rmsnorm_save(xf_.data(), rf_.data(), xlast_.data(), f32_data(w.final_norm, "final norm"), N, D, c.norm_eps);
  if (c.num_labels > 0) {  // a reward model: its head (on hidden()) is the caller's; no logits
    logits_.clear();
    return;
  }
  logits_.resize(size_t(N) * c.vocab_size);
  ops::matmul_train(xf_.data(), N, w.lm_head, logits_.data());
}

void LlamaTrain::backward(const ModelWeights& w, ParamSet& ps, const float* dhidden) {
  backward_impl(w, &ps, nullptr, dhidden);
}

void LlamaTrain::backward_lora(const ModelWeights& w, LoraAdapter& adapter, const float* dhidden) {
  if (w.lora.get() != &adapter) fail("training: backward_lora's adapter is not the one the model applies");
  backward_impl(w, nullptr, &adapter, dhidden);
}

// ps: the gradients of the model's own tensors (null: frozen); adapter: those of w.lora's adapter.
// The adapter's share of each input gradient flows whether or not its own gradients are wanted.
void LlamaTrain::backward_impl(const ModelWeights& w, ParamSet* ps, LoraAdapter* adapter, const float* dhidden) {
  const ModelConfig& c = c_;
  const int N = B_ * T_, D = c.dim, Q = c.q_dim(), KV = c.kv_dim(), H = c.hidden_dim;
  if (N == 0) fail("training backward: no forward to go back through");
  dx_.resize(size_t(N) * D), dx2_.resize(size_t(N) * D), dxn_.resize(size_t(N) * D);
  dq_.resize(size_t(N) * Q), dk_.resize(size_t(N) * KV), dv_.resize(size_t(N) * KV), datt_.resize(size_t(N) * Q);
  dgate_.resize(size_t(N) * H), dup_.resize(size_t(N) * H);

  // Classifier and final norm. Tied: the classifier's gradient is the embedding's.
  // A reward model has no language-model head: only dhidden flows back.
  if (c.num_labels > 0) {
    if (dhidden) std::copy(dhidden, dhidden + dxn_.size(), dxn_.begin());
    else std::fill(dxn_.begin(), dxn_.end(), 0.f);
  } else {
    const char* head = c.tied_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
    if (float* g = grad_of(ps, head)) ops::matmul_dw(logits_.data(), xf_.data(), N, c.vocab_size, D, g);
    ops::matmul_dx(logits_.data(), N, w.lm_head, dxn_.data());
    if (dhidden) ops::add(dxn_.data(), dhidden, dxn_.size());
  }
  ops::rmsnorm_backward(dx_.data(), grad_of(ps, "model.norm.weight"), dxn_.data(), xlast_.data(),
                        f32_data(w.final_norm, "final norm"), rf_.data(), N, D, false);

  for (int l = c.n_layers - 1; l >= 0; --l) {
    const LayerWeights& L = w.layers[size_t(l)];
    const LayerActs& a = acts_[size_t(l)];
    const std::string pre = hf_layer_prefix(l);
    auto g = [&](const char* name) { return grad_of(ps, pre + name); };
    using LT = LoraTarget;
    auto lora = [&](LT t, const float* dy, const float* x, float* dx) {
      lora_backward(w, adapter, l, t, dy, x, a.lora_h[size_t(t)].data(), N, dx, &dropout_);
    };
    // x = x2 + Wdown · act: dx flows to x2 unchanged, and into the feed-forward.
    act_ = a.gate;
    ops::silu_mul(act_.data(), a.up.data(), act_.size());
    if (float* gw = g("mlp.down_proj.weight")) ops::matmul_dw(dx_.data(), act_.data(), N, D, H, gw);
    ops::matmul_dx(dx_.data(), N, L.w_down, dgate_.data());  // dact
    lora(LT::Down, dx_.data(), act_.data(), dgate_.data());
    ops::silu_mul_backward(dgate_.data(), dup_.data(), dgate_.data(), a.gate.data(), a.up.data(), dgate_.size());
    if (float* gw = g("mlp.gate_proj.weight")) ops::matmul_dw(dgate_.data(), a.xn2.data(), N, H, D, gw);
    if (float* gw = g("mlp.up_proj.weight")) ops::matmul_dw(dup_.data(), a.xn2.data(), N, H, D, gw);
    ops::matmul_dx(dgate_.data(), N, L.w_gate, dxn_.data());
    ops::matmul_dx(dup_.data(), N, L.w_up, dx2_.data());
    ops::add(dxn_.data(), dx2_.data(), dxn_.size());
    lora(LT::Gate, dgate_.data(), a.xn2.data(), dxn_.data());
    lora(LT::Up, dup_.data(), a.xn2.data(), dxn_.data());
    dx2_ = dx_;
    ops::rmsnorm_backward(dx2_.data(), g("post_attention_layernorm.weight"), dxn_.data(), a.x2.data(),
                          f32_data(L.ffn_norm, "ffn_norm"), a.r2.data(), N, D, true);
    // x2 = x + Wo · att
    if (float* gw = g("self_attn.o_proj.weight")) ops::matmul_dw(dx2_.data(), a.att.data(), N, D, Q, gw);
    ops::matmul_dx(dx2_.data(), N, L.wo, datt_.data());
    lora(LT::O, dx2_.data(), a.att.data(), datt_.data());
    ops::attention_backward(datt_.data(), a.q.data(), a.k.data(), a.v.data(), a.probs.data(), dq_.data(), dk_.data(),
                            dv_.data(), B_, T_, c.n_heads, c.n_kv_heads, c.head_dim);
    ops::rope_backward(dq_.data(), N, c.n_heads, c.head_dim, pos_.data(), inv_freq_, c.rope_interleaved);
    ops::rope_backward(dk_.data(), N, c.n_kv_heads, c.head_dim, pos_.data(), inv_freq_, c.rope_interleaved);
    if (float* gw = g("self_attn.q_proj.weight")) ops::matmul_dw(dq_.data(), a.xn.data(), N, Q, D, gw);
    if (float* gw = g("self_attn.k_proj.weight")) ops::matmul_dw(dk_.data(), a.xn.data(), N, KV, D, gw);
    if (float* gw = g("self_attn.v_proj.weight")) ops::matmul_dw(dv_.data(), a.xn.data(), N, KV, D, gw);
    ops::matmul_dx(dq_.data(), N, L.wq, dxn_.data());
    ops::matmul_dx(dk_.data(), N, L.wk, dx_.data());
    ops::add(dxn_.data(), dx_.data(), dxn_.size());
    ops::matmul_dx(dv_.data(), N, L.wv, dx_.data());
    ops::add(dxn_.data(), dx_.data(), dxn_.size());
    lora(LT::Q, dq_.data(), a.xn.data(), dxn_.data());
    lora(LT::K, dk_.data(), a.xn.data(), dxn_.data());
    lora(LT::V, dv_.data(), a.xn.data(), dxn_.data());
    dx_ = dx2_;
    ops::rmsnorm_backward(dx_.data(), g("input_layernorm.weight"), dxn_.data(), a.x.data(),
                          f32_data(L.attn_norm, "attn_norm"), a.r1.data(), N, D, true);
  }
  if (float* ge = grad_of(ps, "model.embed_tokens.weight"))
    for (int t = 0; t < N; ++t) ops::add(ge + size_t(tokens_[size_t(t)]) * D, &dx_[size_t(t) * D], size_t(D));
}

double cross_entropy(float* logits, const int* targets, int rows, int vocab, float scale) {
  for (int r = 0; r < rows; ++r)  // before the parallel region: an exception must not cross it
    if (targets[r] >= vocab) fail("cross_entropy: target ", targets[r], " is out of range (vocab size ", vocab, ")");
  double total = 0;
#pragma omp parallel for reduction(+ : total) if (rows > 4)
  for (int r = 0; r < rows; ++r) {
    float* z = logits + size_t(r) * vocab;
    const int t = targets[r];
    if (t < 0) {
      std::fill(z, z + vocab, 0.f);
      continue;
    }
    float mx = -INFINITY;
    for (int i = 0; i < vocab; ++i) mx = std::max(mx, z[i]);
    double sum = 0;
    for (int i = 0; i < vocab; ++i) sum += std::exp(double(z[i] - mx));
    const double lse = mx + std::log(sum);
    total += lse - z[t];
    const float inv = float(1.0 / sum);
    for (int i = 0; i < vocab; ++i) z[i] = scale * (std::exp(z[i] - mx) * inv);
    z[t] -= scale;
  }
  return total;
}

}  // namespace camelid
