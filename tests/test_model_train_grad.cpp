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

#include "grad_check.h"
#include "ref_llama.h"

namespace camelid {
namespace {

using test::expect_grad;
using test::Vec;

// The double reference ops and model (same math as the f32 forward): tests/ref_llama.h.
using Ref = test::RefLlama;

std::vector<float> to_f(const Vec& v) { return std::vector<float>(v.begin(), v.end()); }
Vec random_vec(size_t n, std::mt19937& rng, double scale = 1.0) {
  std::normal_distribution<double> d(0, scale);
  Vec v(n);
  for (double& e : v) e = d(rng);
  return v;
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
  expect_grad("dx", [&](const Vec& v) { return dot(Ref::rmsnorm(v, w, R, n, 1e-5), dy); }, x, dx);
  expect_grad("dw", [&](const Vec& v) { return dot(Ref::rmsnorm(x, v, R, n, 1e-5), dy); }, w, dw);
}

TEST(TrainOps, MatmulBackward) {
  std::mt19937 rng(2);
  const int T = 5, O = 7, K = 9;
  const Vec x = random_vec(T * K, rng), w = random_vec(O * K, rng), dy = random_vec(T * O, rng);
  const auto xf = to_f(x), wf = to_f(w), dyf = to_f(dy);
  std::vector<float> dx(T * K), dw(O * K, 0.f);
  ops::matmul_dx(dyf.data(), T, Tensor{wf.data(), DType::F32, O, K}, dx.data());
  ops::matmul_dw(dyf.data(), xf.data(), T, O, K, dw.data());
  expect_grad("dx", [&](const Vec& v) { return dot(Ref::matmul(v, T, w, O, K), dy); }, x, dx);
  expect_grad("dw", [&](const Vec& v) { return dot(Ref::matmul(x, T, v, O, K), dy); }, w, dw);
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
    expect_grad("rope", [&](const Vec& v) { Vec y = v; Ref::rope(y, rows, rows, heads, hd, inv, inter); return dot(y, dy); }, x, dx);
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
  const Vec ref = Ref::attention(q, k, v, B, T, H, KVH, hd);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], ref[i], 1e-5);
  ops::attention_backward(df.data(), qf.data(), kf.data(), vf.data(), probs.data(), dq.data(), dk.data(), dv.data(), B, T,
                          H, KVH, hd);
  expect_grad("dq", [&](const Vec& x) { return dot(Ref::attention(x, k, v, B, T, H, KVH, hd), dout); }, q, dq);
  expect_grad("dk", [&](const Vec& x) { return dot(Ref::attention(q, x, v, B, T, H, KVH, hd), dout); }, k, dk);
  expect_grad("dv", [&](const Vec& x) { return dot(Ref::attention(q, k, x, B, T, H, KVH, hd), dout); }, v, dv);
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

// ---- the whole model (Ref::loss) ----
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

  Ref ref{ps};
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

  Ref ref{ps, adapter.get()};
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
