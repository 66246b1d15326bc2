#pragma once
// A plain double-precision Llama forward over a ParamSet (same math as the f32 forward), for
// finite-difference checks of the training losses: the final normed hidden states and the logits
// of B rows of T tokens, with one parameter (by name) replaced by given values, and optionally a
// LoRA adapter's update added to the weights it adapts.
#include <cmath>
#include <string>
#include <vector>

#include "model/lora.h"
#include "model/params.h"

namespace camelid::test {

using Vec = std::vector<double>;

struct RefLlama {
  const ParamSet& ps;
  const LoraAdapter* lora = nullptr;  // its update s·B·A is added to the weights it adapts

  static Vec rmsnorm(const Vec& x, const Vec& w, int rows, int n, double eps) {
    Vec y(x.size());
    for (int t = 0; t < rows; ++t) {
      double ss = 0;
      for (int i = 0; i < n; ++i) ss += x[t * n + i] * x[t * n + i];
      const double r = 1 / std::sqrt(ss / n + eps);
      for (int i = 0; i < n; ++i) y[t * n + i] = w[i] * x[t * n + i] * r;
    }
    return y;
  }
  static Vec matmul(const Vec& x, int T, const Vec& w, int O, int K) {  // [T,K] x [O,K]^T
    Vec y(size_t(T) * O, 0.0);
    for (int t = 0; t < T; ++t)
      for (int o = 0; o < O; ++o)
        for (int k = 0; k < K; ++k) y[t * O + o] += x[t * K + k] * w[o * K + k];
    return y;
  }
  static void rope(Vec& x, int rows, int T, int heads, int hd, const std::vector<float>& inv, bool interleaved) {
    for (int r = 0; r < rows; ++r)
      for (int h = 0; h < heads; ++h)
        for (int i = 0; i < hd / 2; ++i) {
          const double a = double(float(r % T) * inv[i]);
          const int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + hd / 2;
          double* v = &x[(size_t(r) * heads + h) * hd];
          const double p = v[i0], q = v[i1];
          v[i0] = p * std::cos(a) - q * std::sin(a);
          v[i1] = q * std::cos(a) + p * std::sin(a);
        }
  }
  static Vec attention(const Vec& q, const Vec& k, const Vec& v, int B, int T, int H, int KVH, int hd) {
    Vec out(q.size(), 0.0);
    const int group = H / KVH;
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < H; ++h)
        for (int i = 0; i < T; ++i) {
          Vec s(size_t(i) + 1);
          double mx = -1e300, sum = 0;
          for (int j = 0; j <= i; ++j) {
            double d = 0;
            for (int e = 0; e < hd; ++e) d += q[((b * T + i) * H + h) * hd + e] * k[((b * T + j) * KVH + h / group) * hd + e];
            s[j] = d / std::sqrt(double(hd));
            mx = std::max(mx, s[j]);
          }
          for (double& e : s) sum += (e = std::exp(e - mx));
          for (int j = 0; j <= i; ++j)
            for (int e = 0; e < hd; ++e)
              out[((b * T + i) * H + h) * hd + e] += s[j] / sum * v[((b * T + j) * KVH + h / group) * hd + e];
        }
    return out;
  }

  static Vec raw(const ParamSet& set, const std::string& name, const std::string& perturbed, const Vec& pv) {
    if (name == perturbed) return pv;
    const auto& v = set.find(name)->value;
    return Vec(v.begin(), v.end());
  }
  Vec get(const std::string& name, const std::string& perturbed, const Vec& pv) const {
    Vec w = raw(ps, name, perturbed, pv);
    if (!lora) return w;
    for (int l = 0; l < ps.config.n_layers; ++l)
      for (const LoraTargetSpec& t : lora_targets()) {
        const Param* A = lora->A(l, t.target);
        if (!A || name != "model.layers." + std::to_string(l) + "." + t.module + ".weight") continue;
        const Vec a = raw(lora->params, A->name, perturbed, pv), b = raw(lora->params, (A + 1)->name, perturbed, pv);
        const int64_t r = A->rows, in = A->cols, out = (A + 1)->rows;
        const double s = lora->config.scale();
        for (int64_t o = 0; o < out; ++o)
          for (int64_t k = 0; k < r; ++k)
            for (int64_t i = 0; i < in; ++i) w[o * in + i] += s * b[o * r + k] * a[k * in + i];
      }
    return w;
  }

  // Final normed hidden states [B*T, dim]; logits [B*T, vocab] when the model has an LM head.
  void forward(const std::vector<int>& tokens, int B, int T, const std::string& perturbed, const Vec& pv, Vec* hidden,
               Vec* logits) const {
    const ModelConfig& c = ps.config;
    const int N = B * T, D = c.dim, H = c.hidden_dim;
    const Vec emb = get("model.embed_tokens.weight", perturbed, pv);
    Vec x(size_t(N) * D);
    for (int t = 0; t < N; ++t)
      for (int i = 0; i < D; ++i) x[t * D + i] = emb[tokens[t] * D + i];
    const auto inv = c.rope_inv_freq();
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      auto W = [&](const char* n) { return get(p + n, perturbed, pv); };
      const Vec xn = rmsnorm(x, W("input_layernorm.weight"), N, D, c.norm_eps);
      Vec q = matmul(xn, N, W("self_attn.q_proj.weight"), c.q_dim(), D);
      Vec k = matmul(xn, N, W("self_attn.k_proj.weight"), c.kv_dim(), D);
      const Vec v = matmul(xn, N, W("self_attn.v_proj.weight"), c.kv_dim(), D);
      rope(q, N, T, c.n_heads, c.head_dim, inv, c.rope_interleaved);
      rope(k, N, T, c.n_kv_heads, c.head_dim, inv, c.rope_interleaved);
      const Vec att = attention(q, k, v, B, T, c.n_heads, c.n_kv_heads, c.head_dim);
      const Vec o = matmul(att, N, W("self_attn.o_proj.weight"), D, c.q_dim());
      for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
      const Vec xn2 = rmsnorm(x, W("post_attention_layernorm.weight"), N, D, c.norm_eps);
      Vec g = matmul(xn2, N, W("mlp.gate_proj.weight"), H, D);
      const Vec u = matmul(xn2, N, W("mlp.up_proj.weight"), H, D);
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      const Vec d = matmul(g, N, W("mlp.down_proj.weight"), D, H);
      for (size_t i = 0; i < x.size(); ++i) x[i] += d[i];
    }
    const Vec xf = rmsnorm(x, get("model.norm.weight", perturbed, pv), N, D, c.norm_eps);
    if (logits && c.num_labels == 0)
      *logits = matmul(xf, N, get(c.tied_embeddings ? "model.embed_tokens.weight" : "lm_head.weight", perturbed, pv),
                       c.vocab_size, D);
    if (hidden) *hidden = xf;
  }

  // Mean cross-entropy of the targets (< 0: ignored) of B rows of T tokens (an LM head).
  double loss(const std::vector<int>& tokens, const std::vector<int>& targets, int B, int T, const std::string& perturbed,
              const Vec& pv) const {
    const int N = B * T, V = ps.config.vocab_size;
    Vec z;
    forward(tokens, B, T, perturbed, pv, nullptr, &z);
    double s = 0;
    int n = 0;
    for (int t = 0; t < N; ++t) {
      if (targets[t] < 0) continue;
      double mx = -1e300, sum = 0;
      for (int i = 0; i < V; ++i) mx = std::max(mx, z[t * V + i]);
      for (int i = 0; i < V; ++i) sum += std::exp(z[t * V + i] - mx);
      s += mx + std::log(sum) - z[t * V + targets[t]], ++n;
    }
    return s / n;
  }

  // Sum of log softmax(logits)[seq[t+1]] over t >= first - 1: the log-probability of seq[first..].
  double seq_logprob(const std::vector<int>& seq, size_t first, const std::string& perturbed, const Vec& pv) const {
    const int T = int(seq.size()) - 1, V = ps.config.vocab_size;
    Vec z;
    forward(std::vector<int>(seq.begin(), seq.end() - 1), 1, T, perturbed, pv, nullptr, &z);
    double s = 0;
    for (int t = int(first) - 1; t < T; ++t) {
      double mx = -1e300, sum = 0;
      for (int i = 0; i < V; ++i) mx = std::max(mx, z[t * V + i]);
      for (int i = 0; i < V; ++i) sum += std::exp(z[t * V + i] - mx);
      s += z[t * V + seq[t + 1]] - mx - std::log(sum);
    }
    return s;
  }

  // score . final hidden state of seq's last token (a reward model).
  double reward(const std::vector<int>& seq, const std::string& perturbed, const Vec& pv) const {
    Vec h;
    forward(seq, 1, int(seq.size()), perturbed, pv, &h, nullptr);
    const Vec w = get("score.weight", perturbed, pv);
    const int D = ps.config.dim;
    double s = 0;
    for (int i = 0; i < D; ++i) s += w[i] * h[(seq.size() - 1) * D + i];
    return s;
  }
};

}  // namespace camelid::test
