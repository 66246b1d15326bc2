#include "model/lora.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "kernels/kernels.h"
#include "model/ops.h"
#include "model/ops_backward.h"
#include "model/tensor_names.h"

namespace camelid {

const std::array<LoraTargetSpec, kLoraTargetCount>& lora_targets() {
  using namespace tensor_dims;
  static const std::array<LoraTargetSpec, kLoraTargetCount> specs{{
      {LoraTarget::Q, "q", "q_proj", "self_attn.q_proj", &LayerWeights::wq, q, dim, true},
      {LoraTarget::K, "k", "k_proj", "self_attn.k_proj", &LayerWeights::wk, kv, dim, true},
      {LoraTarget::V, "v", "v_proj", "self_attn.v_proj", &LayerWeights::wv, kv, dim, false},
      {LoraTarget::O, "o", "o_proj", "self_attn.o_proj", &LayerWeights::wo, dim, q, false},
      {LoraTarget::Gate, "gate", "gate_proj", "mlp.gate_proj", &LayerWeights::w_gate, hidden, dim, false},
      {LoraTarget::Up, "up", "up_proj", "mlp.up_proj", &LayerWeights::w_up, hidden, dim, false},
      {LoraTarget::Down, "down", "down_proj", "mlp.down_proj", &LayerWeights::w_down, dim, hidden, false},
  }};
  return specs;
}

LoraTarget lora_target_from_name(const std::string& name) {
  for (const LoraTargetSpec& s : lora_targets())
    if (name == s.short_name || name == s.peft || name == s.module) return s.target;
  fail("unknown LoRA target module '", printable_name(name),
       "' (expected q, k, v, o, gate, up, down or q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
}

double LoraConfig::scale() const { return use_rslora ? alpha / std::sqrt(double(r)) : alpha / r; }

bool LoraConfig::has(LoraTarget t) const { return std::find(targets.begin(), targets.end(), t) != targets.end(); }

void LoraConfig::validate(const std::string& source) const {
  if (r < 1 || r > kMaxRank) fail(source, ": LoRA rank r = ", r, " is out of range (1..", kMaxRank, ")");
  if (!std::isfinite(alpha)) fail(source, ": lora_alpha is not finite");
  if (!(dropout >= 0 && dropout < 1)) fail(source, ": lora_dropout = ", dropout, " is out of range [0, 1)");
  if (targets.empty()) fail(source, ": no LoRA target modules");
  for (size_t i = 0; i < targets.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (targets[i] == targets[j]) fail(source, ": target module ", lora_target(targets[i]).peft, " is listed twice");
}

const Param* LoraAdapter::A(int layer, LoraTarget t) const {
  if (layer < 0 || size_t(layer) >= index.size()) return nullptr;
  const int i = index[size_t(layer)][size_t(t)];
  return i < 0 ? nullptr : &params.params[size_t(i)];
}

std::string lora_param_name(int layer, LoraTarget t, bool b) {
  return "base_model.model." + hf_layer_prefix(layer) + lora_target(t).module + (b ? ".lora_B.weight" : ".lora_A.weight");
}

LoraAdapter lora_init(const LoraConfig& cfg, const ModelConfig& base, uint64_t seed) {
  cfg.validate("LoRA config");
  base.validate("LoRA base model");
  LoraAdapter a;
  a.config = cfg;
  std::sort(a.config.targets.begin(), a.config.targets.end());
  a.params.config = base;
  a.index.assign(size_t(base.n_layers), {});
  std::mt19937_64 rng(seed);
  for (int l = 0; l < base.n_layers; ++l) {
    a.index[size_t(l)].fill(-1);
    for (LoraTarget t : a.config.targets) {
      const LoraTargetSpec& s = lora_target(t);
      a.index[size_t(l)][size_t(t)] = int(a.params.params.size());
      Param A, B;
      A.name = lora_param_name(l, t, false), A.rows = cfg.r, A.cols = s.in(base);
      B.name = lora_param_name(l, t, true), B.rows = s.out(base), B.cols = cfg.r;
      A.decay = B.decay = true;
      A.value.resize(A.numel()), A.grad.resize(A.numel());
      B.value.assign(B.numel(), 0.f), B.grad.resize(B.numel());
      // kaiming_uniform_(a=sqrt(5)) on [r, in]: gain sqrt(2/(1+5)), bound gain*sqrt(3/in) = 1/sqrt(in).
      const double bound = 1.0 / std::sqrt(double(A.cols));
      for (float& v : A.value) v = float(bound * (2.0 * (double(rng() >> 11) * 0x1.0p-53) - 1.0));
      a.params.params.push_back(std::move(A));
      a.params.params.push_back(std::move(B));
    }
  }
  return a;
}

namespace {

uint64_t mix(uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// x ⊙ mask / (1 - p) into out, the mask drawn from (seed, step, layer, target, element).
void apply_dropout(const LoraDropout& d, int layer, LoraTarget t, const float* x, size_t n, float* out) {
  const uint64_t key = mix(mix(d.seed ^ 0x6c6f7261ull) + d.step * 0x9e3779b97f4a7c15ull +
                           uint64_t(layer * kLoraTargetCount + int(t) + 1) * 0xd1b54a32d192ed03ull);
  const uint64_t threshold = uint64_t(double(d.p) * 0x1.0p64 >= 0x1.0p64 ? ~0ull : uint64_t(double(d.p) * 0x1.0p64));
  const float keep = 1.f / (1.f - d.p);
#pragma omp parallel for if (n > 65536)
  for (size_t i = 0; i < n; ++i) out[i] = mix(key + i * 0x9e3779b97f4a7c15ull) >= threshold ? x[i] * keep : 0.f;
}

bool dropping(const LoraDropout* d) { return d && d->p > 0; }

Tensor f32_view(const Param& p) { return Tensor{p.value.data(), DType::F32, p.rows, p.cols}; }

float scale_of(const ModelWeights& w) { return float(w.lora->config.scale()) * w.lora_scale; }

std::vector<float>& scratch(int i) {
  static thread_local std::vector<float> bufs[3];
  return bufs[i];
}

}  // namespace

void linear(const ModelWeights& w, int layer, const float* X, int T, std::initializer_list<LinearOut> outs,
            const LoraDropout* dropout) {
  const LayerWeights& L = w.layers[size_t(layer)];
  const LinearOut* o = outs.begin();
  auto W = [&](size_t i) -> const Tensor& { return L.*lora_target(o[i].target).member; };
  if (dropout) {  // training: each product through the gemm path (many rows)
    for (size_t i = 0; i < outs.size(); ++i) ops::matmul_train(X, T, W(i), o[i].y);
  } else switch (outs.size()) {
    case 1: kernels::matmul(X, T, W(0), o[0].y); break;
    case 2: kernels::matmul(X, T, {{W(0), o[0].y}, {W(1), o[1].y}}); break;
    case 3: kernels::matmul(X, T, {{W(0), o[0].y}, {W(1), o[1].y}, {W(2), o[2].y}}); break;
    default: fail("linear: ", outs.size(), " outputs (1 to 3 share an input)");
  }
  if (!w.lora) return;
  const float s = scale_of(w);
  for (const LinearOut& out : outs) {
    const Param* A = w.lora->A(layer, out.target);
    if (!A) continue;
    const Param* B = A + 1;
    const float* x = X;
    if (dropping(dropout)) {
      std::vector<float>& xd = scratch(0);
      xd.resize(size_t(T) * size_t(A->cols));
      apply_dropout(*dropout, layer, out.target, X, xd.size(), xd.data());
      x = xd.data();
    }
    std::vector<float>& h = out.keep_h ? *out.keep_h : scratch(1);
    h.resize(size_t(T) * size_t(A->rows));
    kernels::matmul(x, T, f32_view(*A), h.data());  // [T, r]
    std::vector<float>& d = scratch(2);
    d.resize(size_t(T) * size_t(B->rows));
    kernels::matmul(h.data(), T, f32_view(*B), d.data());  // [T, out]
    float* y = out.y;
#pragma omp parallel for if (d.size() > 65536)
    for (size_t i = 0; i < d.size(); ++i) y[i] += s * d[i];
  }
}

void lora_backward(const ModelWeights& w, LoraAdapter* grads, int layer, LoraTarget t, const float* dY,
                   const float* X, const float* H, int T, float* dX, const LoraDropout* dropout) {
  if (!w.lora) return;
  const Param* A = w.lora->A(layer, t);
  if (!A) return;
  const Param* B = A + 1;
  const int r = int(A->rows), in = int(A->cols), out = int(B->rows);
  const float s = scale_of(w);
  // The scaled output gradient s·dY, then dB += (s·dY)^T·H and dH = (s·dY)·B.
  std::vector<float> dys(dY, dY + size_t(T) * out), dh(size_t(T) * r), dxd(size_t(T) * in);
  for (float& v : dys) v *= s;
  Param* gA = grads ? grads->A(layer, t) : nullptr;
  Param* gB = grads ? grads->B(layer, t) : nullptr;
  if (gB && !gB->grad.empty()) ops::matmul_dw(dys.data(), H, T, out, r, gB->grad.data());
  ops::matmul_dx(dys.data(), T, f32_view(*B), dh.data());
  // H = Xd·A^T: dA += dH^T·Xd, dXd = dH·A, dX += dXd ⊙ mask / (1-p).
  if (gA && !gA->grad.empty()) {
    if (dropping(dropout)) {
      std::vector<float> xd(size_t(T) * in);
      apply_dropout(*dropout, layer, t, X, xd.size(), xd.data());
      ops::matmul_dw(dh.data(), xd.data(), T, r, in, gA->grad.data());
    } else {
      ops::matmul_dw(dh.data(), X, T, r, in, gA->grad.data());
    }
  }
  ops::matmul_dx(dh.data(), T, f32_view(*A), dxd.data());
  if (dropping(dropout)) {
    // The mask of an element is whether its dropped input is kept: drop a tensor of ones.
    std::vector<float> ones(dxd.size(), 1.f), m(dxd.size());
    apply_dropout(*dropout, layer, t, ones.data(), m.size(), m.data());
    for (size_t i = 0; i < dxd.size(); ++i) dxd[i] *= m[i];
  }
  ops::add(dX, dxd.data(), dxd.size());
}

void lora_merge_into(ParamSet& base, const LoraAdapter& adapter, float scale) {
  const float s = float(adapter.config.scale()) * scale;
  for (size_t l = 0; l < adapter.index.size(); ++l)
    for (const LoraTargetSpec& spec : lora_targets()) {
      const Param* A = adapter.A(int(l), spec.target);
      if (!A) continue;
      const Param* B = A + 1;
      Param& W = base.at(hf_layer_prefix(int(l)) + spec.module + ".weight");
      if (W.rows != B->rows || W.cols != A->cols)
        fail("merge: ", W.name, " is [", W.rows, ", ", W.cols, "], the adapter's update [", B->rows, ", ", A->cols, "]");
      const int64_t r = A->rows;
#pragma omp parallel for if (W.rows > 16)
      for (int64_t o = 0; o < W.rows; ++o) {
        float* wr = &W.value[size_t(o) * size_t(W.cols)];
        for (int64_t k = 0; k < r; ++k) {
          const float b = s * B->value[size_t(o * r + k)];
          const float* ar = &A->value[size_t(k) * size_t(A->cols)];
          for (int64_t i = 0; i < W.cols; ++i) wr[i] += b * ar[i];
        }
      }
    }
}

}  // namespace camelid
