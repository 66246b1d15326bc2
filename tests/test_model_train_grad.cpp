// The training backward against finite differences of a double-precision reference: every op on
// its own, then the whole model's gradient for every parameter tensor (tied and untied
// classifier, both RoPE layouts, grouped-query attention); then LoRA: every adapter tensor's
// gradient over a frozen base, dropout, a quantized base (QLoRA), and inference through the adapter.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "core/error.h"
#include "kernels/kernels.h"
#include "model/llama.h"
#include "model/llama_train.h"
#include "model/lora.h"
#include "model/ops_backward.h"
#include "model/params.h"

namespace camelid {
namespace {

using Vec = std::vector<double>;

// ---- double reference ops (same math as the f32 forward) ----
Vec ref_rmsnorm(const Vec& x, const Vec& w, int rows, int n, double eps) {
  Vec y(x.size());
  for (int t = 0; t < rows; ++t) {
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += x[t * n + i] * x[t * n + i];
    const double r = 1 / std::sqrt(ss / n + eps);
    for (int i = 0; i < n; ++i) y[t * n + i] = w[i] * x[t * n + i] * r;
  }
  return y;
}
Vec ref_matmul(const Vec& x, int T, const Vec& w, int O, int K) {  // [T,K] x [O,K]^T
  Vec y(size_t(T) * O, 0.0);
  for (int t = 0; t < T; ++t)
    for (int o = 0; o < O; ++o)
      for (int k = 0; k < K; ++k) y[t * O + o] += x[t * K + k] * w[o * K + k];
  return y;
}
void ref_rope(Vec& x, int rows, int T, int heads, int hd, const std::vector<float>& inv_freq, bool interleaved) {
  for (int r = 0; r < rows; ++r)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < hd / 2; ++i) {
        const double a = double(float(r % T) * inv_freq[i]);
        const int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + hd / 2;
        double* v = &x[(size_t(r) * heads + h) * hd];
        const double p = v[i0], q = v[i1];
        v[i0] = p * std::cos(a) - q * std::sin(a);
        v[i1] = q * std::cos(a) + p * std::sin(a);
      }
}
Vec ref_attention(const Vec& q, const Vec& k, const Vec& v, int B, int T, int H, int KVH, int hd) {
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

std::vector<float> to_f(const Vec& v) { return std::vector<float>(v.begin(), v.end()); }
Vec random_vec(size_t n, std::mt19937& rng, double scale = 1.0) {
  std::normal_distribution<double> d(0, scale);
  Vec v(n);
  for (double& e : v) e = d(rng);
  return v;
}

// Checks analytic (f32) against central differences of f (double) at x, for every element.
void expect_grad(const char* what, const std::function<double(const Vec&)>& f, Vec x, const std::vector<float>& analytic,
                 double rel = 2e-3) {
  ASSERT_EQ(analytic.size(), x.size());
  double scale = 1e-6;
  for (float g : analytic) scale = std::max(scale, double(std::fabs(g)));
  for (size_t i = 0; i < x.size(); ++i) {
    const double h = 1e-6 * std::max(1.0, std::fabs(x[i])), x0 = x[i];
    x[i] = x0 + h;
    const double up = f(x);
    x[i] = x0 - h;
    const double down = f(x);
    x[i] = x0;
    const double fd = (up - down) / (2 * h);
    EXPECT_NEAR(analytic[i], fd, rel * scale) << what << " element " << i;
  }
}
double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

TEST(TrainOps, RmsnormBackward) {
  std::mt19937 rng(1);
  const int R = 3, n = 8;
  const Vec x = random_vec(R * n, rng), w = random_vec(n, rng), dy = random_vec(R * n, rng);
  std::vector<float> y(R * n), r(R), dx(R * n), dw(n, 0.f);
  const auto xf = to_f(x), wf = to_f(w), dyf = to_f(dy);
  ops::rmsnorm_save(y.data(), r.data(), xf.data(), wf.data(), R, n, 1e-5);
  ops::rmsnorm_backward(dx.data(), dw.data(), dyf.data(), xf.data(), wf.data(), r.data(), R, n, false);
  expect_grad("dx", [&](const Vec& v) { return dot(ref_rmsnorm(v, w, R, n, 1e-5), dy); }, x, dx);
  expect_grad("dw", [&](const Vec& v) { return dot(ref_rmsnorm(x, v, R, n, 1e-5), dy); }, w, dw);
}

TEST(TrainOps, MatmulBackward) {
  std::mt19937 rng(2);
  const int T = 5, O = 7, K = 9;
  const Vec x = random_vec(T * K, rng), w = random_vec(O * K, rng), dy = random_vec(T * O, rng);
  const auto xf = to_f(x), wf = to_f(w), dyf = to_f(dy);
  std::vector<float> dx(T * K), dw(O * K, 0.f);
  ops::matmul_dx(dyf.data(), T, Tensor{wf.data(), DType::F32, O, K}, dx.data());
  ops::matmul_dw(dyf.data(), xf.data(), T, O, K, dw.data());
  expect_grad("dx", [&](const Vec& v) { return dot(ref_matmul(v, T, w, O, K), dy); }, x, dx);
  expect_grad("dw", [&](const Vec& v) { return dot(ref_matmul(x, T, v, O, K), dy); }, w, dw);
}

TEST(TrainOps, RopeAndSwigluBackward) {
  std::mt19937 rng(3);
  const int rows = 4, heads = 2, hd = 6;
  ModelConfig c;
  c.head_dim = hd;
  const std::vector<float> inv = c.rope_inv_freq();
  std::vector<int> pos(rows);
  for (int i = 0; i < rows; ++i) pos[i] = i;
  for (bool inter : {false, true}) {
    const Vec x = random_vec(rows * heads * hd, rng), dy = random_vec(x.size(), rng);
    std::vector<float> dx = to_f(dy);
    ops::rope_backward(dx.data(), rows, heads, hd, pos.data(), inv, inter);
    expect_grad("rope", [&](const Vec& v) { Vec y = v; ref_rope(y, rows, rows, heads, hd, inv, inter); return dot(y, dy); }, x, dx);
  }
  const int n = 16;
  const Vec g = random_vec(n, rng, 2.0), u = random_vec(n, rng), d = random_vec(n, rng);
  const auto gf = to_f(g), uf = to_f(u), df = to_f(d);
  std::vector<float> dg(n), du(n);
  ops::silu_mul_backward(dg.data(), du.data(), df.data(), gf.data(), uf.data(), n);
  auto swiglu = [&](const Vec& a, const Vec& b) {
    double s = 0;
    for (int i = 0; i < n; ++i) s += a[i] / (1 + std::exp(-a[i])) * b[i] * d[i];
    return s;
  };
  expect_grad("dgate", [&](const Vec& v) { return swiglu(v, u); }, g, dg);
  expect_grad("dup", [&](const Vec& v) { return swiglu(g, v); }, u, du);
}

TEST(TrainOps, CausalAttentionBackwardWithGroupedHeads) {
  std::mt19937 rng(4);
  const int B = 2, T = 5, H = 4, KVH = 2, hd = 4;
  const Vec q = random_vec(B * T * H * hd, rng), k = random_vec(B * T * KVH * hd, rng),
            v = random_vec(B * T * KVH * hd, rng), dout = random_vec(q.size(), rng);
  const auto qf = to_f(q), kf = to_f(k), vf = to_f(v), df = to_f(dout);
  std::vector<float> out(q.size()), probs(size_t(B) * H * T * T), dq(q.size()), dk(k.size()), dv(v.size());
  ops::attention_forward(qf.data(), kf.data(), vf.data(), out.data(), probs.data(), B, T, H, KVH, hd);
  const Vec ref = ref_attention(q, k, v, B, T, H, KVH, hd);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], ref[i], 1e-5);
  ops::attention_backward(df.data(), qf.data(), kf.data(), vf.data(), probs.data(), dq.data(), dk.data(), dv.data(), B, T,
                          H, KVH, hd);
  expect_grad("dq", [&](const Vec& x) { return dot(ref_attention(x, k, v, B, T, H, KVH, hd), dout); }, q, dq);
  expect_grad("dk", [&](const Vec& x) { return dot(ref_attention(q, x, v, B, T, H, KVH, hd), dout); }, k, dk);
  expect_grad("dv", [&](const Vec& x) { return dot(ref_attention(q, k, x, B, T, H, KVH, hd), dout); }, v, dv);
}

TEST(TrainOps, CrossEntropyGradientAndIgnoredRows) {
  std::mt19937 rng(5);
  const int R = 3, V = 6;
  const Vec z = random_vec(R * V, rng, 3.0);
  const int targets[R] = {2, -1, 5};
  auto loss = [&](const Vec& v) {
    double s = 0;
    for (int r = 0; r < R; ++r) {
      if (targets[r] < 0) continue;
      double mx = -1e300, sum = 0;
      for (int i = 0; i < V; ++i) mx = std::max(mx, v[r * V + i]);
      for (int i = 0; i < V; ++i) sum += std::exp(v[r * V + i] - mx);
      s += mx + std::log(sum) - v[r * V + targets[r]];
    }
    return s / 2;
  };
  std::vector<float> g = to_f(z);
  const double total = cross_entropy(g.data(), targets, R, V, 0.5f);
  EXPECT_NEAR(total / 2, loss(z), 1e-5);
  expect_grad("dlogits", loss, z, g);
  const int bad[1] = {V};
  EXPECT_THROW(cross_entropy(g.data(), bad, 1, V, 1.f), Error);
}

// ---- the whole model ----
struct RefModel {
  const ParamSet& ps;
  const LoraAdapter* lora = nullptr;  // its update s·B·A is added to the weights it adapts
  Vec raw(const ParamSet& set, const std::string& name, const std::string& perturbed, const Vec& pv) const {
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
  // Mean cross-entropy of the targets, with parameter `perturbed` replaced by pv.
  double loss(const std::vector<int>& tokens, const std::vector<int>& targets, int B, int T, const std::string& perturbed,
              const Vec& pv) const {
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
      const Vec xn = ref_rmsnorm(x, W("input_layernorm.weight"), N, D, c.norm_eps);
      Vec q = ref_matmul(xn, N, W("self_attn.q_proj.weight"), c.q_dim(), D);
      Vec k = ref_matmul(xn, N, W("self_attn.k_proj.weight"), c.kv_dim(), D);
      const Vec v = ref_matmul(xn, N, W("self_attn.v_proj.weight"), c.kv_dim(), D);
      ref_rope(q, N, T, c.n_heads, c.head_dim, inv, c.rope_interleaved);
      ref_rope(k, N, T, c.n_kv_heads, c.head_dim, inv, c.rope_interleaved);
      const Vec att = ref_attention(q, k, v, B, T, c.n_heads, c.n_kv_heads, c.head_dim);
      const Vec o = ref_matmul(att, N, W("self_attn.o_proj.weight"), D, c.q_dim());
      for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
      const Vec xn2 = ref_rmsnorm(x, W("post_attention_layernorm.weight"), N, D, c.norm_eps);
      Vec g = ref_matmul(xn2, N, W("mlp.gate_proj.weight"), H, D);
      const Vec u = ref_matmul(xn2, N, W("mlp.up_proj.weight"), H, D);
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      const Vec d = ref_matmul(g, N, W("mlp.down_proj.weight"), D, H);
      for (size_t i = 0; i < x.size(); ++i) x[i] += d[i];
    }
    const Vec xf = ref_rmsnorm(x, get("model.norm.weight", perturbed, pv), N, D, c.norm_eps);
    const Vec head = get(c.tied_embeddings ? "model.embed_tokens.weight" : "lm_head.weight", perturbed, pv);
    const Vec z = ref_matmul(xf, N, head, c.vocab_size, D);
    double s = 0;
    int n = 0;
    for (int t = 0; t < N; ++t) {
      if (targets[t] < 0) continue;
      double mx = -1e300, sum = 0;
      for (int i = 0; i < c.vocab_size; ++i) mx = std::max(mx, z[t * c.vocab_size + i]);
      for (int i = 0; i < c.vocab_size; ++i) sum += std::exp(z[t * c.vocab_size + i] - mx);
      s += mx + std::log(sum) - z[t * c.vocab_size + targets[t]], ++n;
    }
    return s / n;
  }
};

ModelConfig tiny_config(bool tied, bool interleaved) {
  ModelConfig c;
  c.vocab_size = 11, c.dim = 8, c.hidden_dim = 12, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 2;
  c.max_seq_len = 16, c.tied_embeddings = tied, c.rope_interleaved = interleaved;
  return c;
}

class TrainModelGrad : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

TEST_P(TrainModelGrad, EveryParameterMatchesFiniteDifferences) {
  const auto [tied, interleaved] = GetParam();
  const ModelConfig c = tiny_config(tied, interleaved);
  ParamSet ps = params_init(c, 7, 0.5f);
  std::mt19937 rng(9);
  for (Param& p : ps.params)  // norms away from 1, so their gradients are exercised
    if (!p.decay)
      for (float& v : p.value) v = 1.f + 0.3f * std::normal_distribution<float>(0, 1)(rng);
  const int B = 2, T = 5;
  std::vector<int> tokens(B * T), targets(B * T);
  for (int i = 0; i < B * T; ++i) tokens[i] = int(rng() % c.vocab_size), targets[i] = int(rng() % c.vocab_size);
  targets[3] = -1;  // an ignored position
  const int counted = B * T - 1;

  LlamaTrain model(c);
  auto w = weights_view(ps);
  model.forward(*w, tokens.data(), B, T);
  const double loss = cross_entropy(model.logits(), targets.data(), B * T, c.vocab_size, 1.f / counted) / counted;
  ps.zero_grad();
  model.backward(*w, ps);

  RefModel ref{ps};
  EXPECT_NEAR(loss, ref.loss(tokens, targets, B, T, "", {}), 1e-5);
  for (const Param& p : ps.params) {
    const Vec v(p.value.begin(), p.value.end());
    expect_grad(p.name.c_str(), [&](const Vec& pv) { return ref.loss(tokens, targets, B, T, p.name, pv); }, v, p.grad);
  }
}

// One Llama definition: the training forward gives the logits inference gives on the same weights.
TEST(TrainModel, ForwardMatchesInference) {
  ModelConfig c = tiny_config(false, false);
  c.dim = 64, c.hidden_dim = 96, c.head_dim = 16, c.vocab_size = 50, c.max_seq_len = 128;
  ParamSet ps = params_init(c, 3, 0.1f);
  auto w = weights_view(ps);
  const int T = 80;  // >= 64 rows: the forward's products take kernels::gemm
  std::vector<int> tokens(T);
  for (int i = 0; i < T; ++i) tokens[i] = (i * 7 + 3) % c.vocab_size;
  LlamaTrain train(c);
  train.forward(*w, tokens.data(), 1, T);
  Llama llama(w);
  KVCache cache(c, 1, T);
  Batch b;
  for (int i = 0; i < T; ++i) b.add(tokens[i], i, 0, true);
  std::vector<float> logits;
  llama.forward(b, cache, logits);
  for (size_t i = 0; i < logits.size(); ++i) EXPECT_NEAR(train.logits()[i], logits[i], 1e-4) << i;
}

// ---- LoRA: the adapter's gradients over a frozen base ----
LoraConfig all_targets(int r, double alpha, double dropout = 0) {
  LoraConfig lc;
  lc.r = r, lc.alpha = alpha, lc.dropout = dropout;
  for (const LoraTargetSpec& t : lora_targets()) lc.targets.push_back(t.target);
  return lc;
}
// An adapter whose B is not zero (as after some training), so A's gradients are not zero either.
std::shared_ptr<LoraAdapter> random_adapter(const LoraConfig& lc, const ModelConfig& c, uint64_t seed, float b_std) {
  auto a = std::make_shared<LoraAdapter>(lora_init(lc, c, seed));
  std::mt19937 rng{unsigned(seed)};
  for (Param& p : a->params.params)
    if (p.name.find("lora_B") != std::string::npos)
      for (float& v : p.value) v = b_std * std::normal_distribution<float>(0, 1)(rng);
  return a;
}

class LoraModelGrad : public ::testing::TestWithParam<bool> {};

TEST_P(LoraModelGrad, AdapterGradientsMatchFiniteDifferences) {
  const ModelConfig c = tiny_config(false, GetParam());
  ParamSet ps = params_init(c, 11, 0.5f);
  auto adapter = random_adapter(all_targets(2, 3.0), c, 5, 0.4f);
  std::mt19937 rng(13);
  const int B = 2, T = 4;
  std::vector<int> tokens(B * T), targets(B * T);
  for (int i = 0; i < B * T; ++i) tokens[i] = int(rng() % c.vocab_size), targets[i] = int(rng() % c.vocab_size);
  auto w = weights_view(ps);
  w->lora = adapter;
  LlamaTrain model(c);
  model.forward(*w, tokens.data(), B, T);
  const double loss = cross_entropy(model.logits(), targets.data(), B * T, c.vocab_size, 1.f / (B * T)) / (B * T);
  adapter->params.zero_grad();
  model.backward_lora(*w, *adapter);
  for (const Param& p : ps.params)  // the base is frozen: not one gradient written
    for (float g : p.grad) ASSERT_EQ(g, 0.f) << p.name;

  RefModel ref{ps, adapter.get()};
  EXPECT_NEAR(loss, ref.loss(tokens, targets, B, T, "", {}), 1e-5);
  EXPECT_EQ(adapter->params.params.size(), size_t(2 * 7 * c.n_layers));
  for (const Param& p : adapter->params.params) {
    const Vec v(p.value.begin(), p.value.end());
    expect_grad(p.name.c_str(), [&](const Vec& pv) { return ref.loss(tokens, targets, B, T, p.name, pv); }, v, p.grad);
  }
  // A backward_lora with an adapter the model does not apply is refused.
  LoraAdapter other = lora_init(all_targets(2, 3.0), c, 5);
  EXPECT_THROW(model.backward_lora(*w, other), Error);
}

INSTANTIATE_TEST_SUITE_P(Layouts, LoraModelGrad, ::testing::Bool());

double lora_loss(LlamaTrain& m, const ModelWeights& w, const std::vector<int>& tokens, const std::vector<int>& targets,
                 int B, int T, int vocab) {
  m.set_dropout(true, 77);  // the same mask every time
  m.forward(w, tokens.data(), B, T);
  return cross_entropy(m.logits(), targets.data(), B * T, vocab, 1.f) / (B * T);
}

// Dropout: the backward applies the forward's mask (a directional derivative of the f32 forward
// with that same mask, in f32 with a step large enough for its rounding).
TEST(LoraTrain, DropoutBackwardUsesTheForwardsMask) {
  const ModelConfig c = tiny_config(true, false);
  ParamSet ps = params_init(c, 3, 0.5f);
  auto adapter = random_adapter(all_targets(3, 6.0, 0.3), c, 8, 0.3f);
  auto w = weights_view(ps);
  w->lora = adapter;
  std::mt19937 rng(21);
  const int B = 2, T = 5;
  std::vector<int> tokens(B * T), targets(B * T);
  for (int i = 0; i < B * T; ++i) tokens[i] = int(rng() % c.vocab_size), targets[i] = int(rng() % c.vocab_size);
  LlamaTrain model(c);
  const double l0 = lora_loss(model, *w, tokens, targets, B, T, c.vocab_size);
  std::vector<float> scaled(model.logits(), model.logits() + size_t(B * T) * c.vocab_size);
  for (float& v : scaled) v /= float(B * T);
  std::copy(scaled.begin(), scaled.end(), model.logits());
  adapter->params.zero_grad();
  model.backward_lora(*w, *adapter);
  model.set_dropout(false);
  model.forward(*w, tokens.data(), B, T);
  const double no_drop = cross_entropy(model.logits(), targets.data(), B * T, c.vocab_size, 1.f) / (B * T);
  EXPECT_GT(std::fabs(no_drop - l0), 1e-4);  // the mask changes the loss

  std::vector<std::vector<float>> dir;
  double predicted = 0;
  for (Param& p : adapter->params.params) {
    dir.emplace_back(p.value.size());
    for (size_t i = 0; i < p.value.size(); ++i) {
      dir.back()[i] = std::normal_distribution<float>(0, 1)(rng);
      predicted += double(dir.back()[i]) * p.grad[i];
    }
  }
  const float eps = 5e-4f;
  auto shift = [&](float by) {
    for (size_t k = 0; k < dir.size(); ++k)
      for (size_t i = 0; i < dir[k].size(); ++i) adapter->params.params[k].value[i] += by * dir[k][i];
  };
  shift(eps);
  const double up = lora_loss(model, *w, tokens, targets, B, T, c.vocab_size);
  shift(-2 * eps);
  const double down = lora_loss(model, *w, tokens, targets, B, T, c.vocab_size);
  shift(eps);
  EXPECT_NEAR((up - down) / (2 * eps), predicted, 2e-2 * std::fabs(predicted) + 1e-4);
}

// QLoRA: a quantized frozen base. With exact dequantization (kernels::set_exact) the adapter's
// gradients equal those over the dequantized f32 base; the fast integer path stays close.
std::shared_ptr<ModelWeights> quantized_copy(const ParamSet& ps, DType type) {
  auto w = weights_view(ps);
  for (LayerWeights& L : w->layers)
    for (const LoraTargetSpec& t : lora_targets()) {
      Tensor& W = L.*t.member;
      std::vector<float> buf(row_bytes(type, W.cols) * size_t(W.rows) / sizeof(float) + 1);
      for (int64_t r = 0; r < W.rows; ++r)
        dtype_info(type).from_f32(static_cast<const float*>(W.data) + r * W.cols,
                                  reinterpret_cast<uint8_t*>(buf.data()) + size_t(r) * row_bytes(type, W.cols), W.cols);
      const Tensor view{nullptr, type, W.rows, W.cols};
      w->owned.push_back(std::make_unique<std::vector<float>>(std::move(buf)));
      W = view;
      W.data = w->owned.back()->data();
    }
  return w;
}

std::vector<std::vector<float>> adapter_grads(const ModelWeights& base, const ModelConfig& c, const LoraConfig& lc,
                                              const std::vector<int>& tokens, const std::vector<int>& targets, int B, int T) {
  auto adapter = random_adapter(lc, c, 4, 0.2f);
  ModelWeights w;  // the base's views, with the adapter attached
  w.config = base.config, w.embed = base.embed, w.layers = base.layers, w.final_norm = base.final_norm;
  w.lm_head = base.lm_head, w.lora = adapter;
  LlamaTrain model(c);
  model.forward(w, tokens.data(), B, T);
  cross_entropy(model.logits(), targets.data(), B * T, c.vocab_size, 1.f / (B * T));
  adapter->params.zero_grad();
  model.backward_lora(w, *adapter);
  std::vector<std::vector<float>> g;
  for (const Param& p : adapter->params.params) g.push_back(p.grad);
  return g;
}

TEST(LoraTrain, QuantizedBaseGradientsMatchTheDequantizedBase) {
  for (DType type : {DType::Q8_0, DType::Q4_K}) {
    ModelConfig c = tiny_config(false, true);
    c.dim = 256, c.hidden_dim = 256, c.n_layers = 1, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 64;
    const ParamSet ps = params_init(c, 17, 0.05f);
    auto q = quantized_copy(ps, type);
    const ParamSet deq = params_from_weights(*q);  // the same weights, exactly dequantized, in f32
    auto f = weights_view(deq);
    std::mt19937 rng(3);
    const int B = 2, T = 6;
    std::vector<int> tokens(B * T), targets(B * T);
    for (int i = 0; i < B * T; ++i) tokens[i] = int(rng() % c.vocab_size), targets[i] = int(rng() % c.vocab_size);
    const LoraConfig lc = all_targets(4, 8.0);
    const auto ref = adapter_grads(*f, c, lc, tokens, targets, B, T);
    for (bool exact : {true, false}) {
      kernels::set_exact(exact);
      const auto got = adapter_grads(*q, c, lc, tokens, targets, B, T);
      kernels::set_exact(false);
      for (size_t k = 0; k < ref.size(); ++k) {
        double mx = 1e-12, err = 0;
        for (size_t i = 0; i < ref[k].size(); ++i)
          mx = std::max(mx, double(std::fabs(ref[k][i]))), err = std::max(err, double(std::fabs(got[k][i] - ref[k][i])));
        EXPECT_LT(err / mx, exact ? 1e-4 : 5e-2) << dtype_name(type) << (exact ? " exact" : " fast") << " tensor " << k;
      }
    }
  }
}

// Inference goes through the same seam: Llama with the adapter gives the training forward's
// logits and the merged model's; a zero-B adapter gives the base's.
TEST(LoraInference, MatchesTrainingForwardAndTheMergedModel) {
  ModelConfig c = tiny_config(false, false);
  c.dim = 32, c.hidden_dim = 48, c.head_dim = 8, c.vocab_size = 40;
  ParamSet ps = params_init(c, 5, 0.2f);
  const int T = 6;
  std::vector<int> tokens(T);
  for (int i = 0; i < T; ++i) tokens[i] = (i * 11 + 2) % c.vocab_size;
  auto infer = [&](std::shared_ptr<ModelWeights> w) {
    Llama llama(std::move(w));
    KVCache cache(c, 1, T);
    Batch b;
    for (int i = 0; i < T; ++i) b.add(tokens[i], i, 0, true);
    std::vector<float> logits;
    llama.forward(b, cache, logits);
    return logits;
  };
  const std::vector<float> base = infer(weights_view(ps));
  auto zero = std::make_shared<LoraAdapter>(lora_init(all_targets(4, 8.0), c, 1));
  auto wz = weights_view(ps);
  wz->lora = zero;
  EXPECT_EQ(infer(wz), base);

  auto adapter = random_adapter(all_targets(4, 8.0), c, 2, 0.3f);
  auto w = weights_view(ps);
  w->lora = adapter;
  w->lora_scale = 0.7f;
  const std::vector<float> got = infer(w);
  LlamaTrain train(c);
  train.forward(*w, tokens.data(), 1, T);
  ParamSet merged = ps;
  lora_merge_into(merged, *adapter, 0.7f);
  const std::vector<float> want = infer(weights_view(merged));
  double moved = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], train.logits()[i], 1e-4) << i;
    EXPECT_NEAR(got[i], want[i], 1e-4) << i;
    moved = std::max(moved, double(std::fabs(got[i] - base[i])));
  }
  EXPECT_GT(moved, 1e-2);  // the adapter does change the model
}

INSTANTIATE_TEST_SUITE_P(TiedAndLayouts, TrainModelGrad,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()));

}  // namespace
}  // namespace camelid
