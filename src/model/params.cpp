#include "model/params.h"

#include <cmath>
#include <random>

#include "core/error.h"
#include "model/tensor_names.h"

namespace camelid {

Param* ParamSet::find(const std::string& name) {
  for (Param& p : params)
    if (p.name == name) return &p;
  return nullptr;
}
const Param* ParamSet::find(const std::string& name) const { return const_cast<ParamSet*>(this)->find(name); }

Param& ParamSet::at(const std::string& name) {
  if (Param* p = find(name)) return *p;
  fail("model has no parameter named '", name, "'");
}

void ParamSet::zero_grad() {
  for (Param& p : params) std::fill(p.grad.begin(), p.grad.end(), 0.f);
}

size_t ParamSet::numel(bool trainable_only) const {
  size_t n = 0;
  for (const Param& p : params)
    if (!trainable_only || p.trainable) n += p.numel();
  return n;
}

namespace {

// Every parameter's name and shape, in Hugging Face order (LlamaForCausalLM.named_parameters).
template <class Fn>
void for_each_param(const ModelConfig& c, Fn fn) {
  fn("model.embed_tokens.weight", int64_t(c.vocab_size), int64_t(c.dim), false);
  for (int l = 0; l < c.n_layers; ++l)
    for (const LayerTensorSpec& t : kLayerTensors) fn(hf_layer_prefix(l) + t.hf, t.rows(c), t.cols(c), t.vector);
  fn("model.norm.weight", int64_t(1), int64_t(c.dim), true);
  if (c.num_labels > 0) fn("score.weight", int64_t(c.num_labels), int64_t(c.dim), false);  // a reward model's head
  else if (!c.tied_embeddings) fn("lm_head.weight", int64_t(c.vocab_size), int64_t(c.dim), false);
}

Param make_param(const std::string& name, int64_t rows, int64_t cols, bool vector) {
  Param p;
  p.name = name, p.rows = rows, p.cols = cols, p.decay = !vector;
  p.value.resize(p.numel());
  p.grad.resize(p.numel());
  return p;
}

}  // namespace

ParamSet params_from_weights(const ModelWeights& w) {
  ParamSet ps;
  ps.config = w.config;
  const ModelConfig& c = w.config;
  auto tensor_of = [&](const std::string& name) -> const Tensor& {
    if (name == "model.embed_tokens.weight") return w.embed;
    if (name == "model.norm.weight") return w.final_norm;
    if (name == "lm_head.weight") return w.lm_head;
    if (name == "score.weight") return w.score;
    const int l = std::stoi(name.substr(13));  // "model.layers.N."
    const std::string rest = name.substr(hf_layer_prefix(l).size());
    for (const LayerTensorSpec& t : kLayerTensors)
      if (rest == t.hf) return w.layers[size_t(l)].*t.member;
    fail("params_from_weights: no tensor for ", name);
  };
  for_each_param(c, [&](const std::string& name, int64_t rows, int64_t cols, bool vector) {
    Param p = make_param(name, rows, cols, vector);
    const Tensor& t = tensor_of(name);
    if (t.numel() != int64_t(p.numel())) fail(w.source, ": tensor ", name, " has ", t.numel(), " elements, expected ", p.numel());
    for (int64_t r = 0; r < t.rows; ++r) to_f32(t.dtype, t.row(r), &p.value[size_t(r) * size_t(t.cols)], size_t(t.cols));
    ps.params.push_back(std::move(p));
  });
  return ps;
}

ParamSet params_init(const ModelConfig& c, uint64_t seed, float init_std) {
  c.validate("params_init");
  ParamSet ps;
  ps.config = c;
  // Box-Muller over a fixed engine (std::normal_distribution's algorithm is the library's choice).
  std::mt19937_64 rng(seed);
  auto uniform = [&] { return (double(rng() >> 11) + 0.5) * 0x1.0p-53; };
  for_each_param(c, [&](const std::string& name, int64_t rows, int64_t cols, bool vector) {
    Param p = make_param(name, rows, cols, vector);
    if (vector) {
      std::fill(p.value.begin(), p.value.end(), 1.f);
    } else {
      for (size_t i = 0; i < p.value.size(); i += 2) {
        const double r = std::sqrt(-2.0 * std::log(uniform())), a = 2.0 * M_PI * uniform();
        p.value[i] = float(init_std * r * std::cos(a));
        if (i + 1 < p.value.size()) p.value[i + 1] = float(init_std * r * std::sin(a));
      }
    }
    ps.params.push_back(std::move(p));
  });
  return ps;
}

std::shared_ptr<ModelWeights> weights_view(const ParamSet& ps) {
  auto w = std::make_shared<ModelWeights>();
  w->config = ps.config;
  w->format = "params";
  const ModelConfig& c = ps.config;
  auto view = [&](const std::string& name) {
    const Param* p = ps.find(name);
    if (!p) fail("weights_view: parameter ", name, " is missing");
    return Tensor{p->value.data(), DType::F32, p->rows, p->cols};
  };
  w->embed = view("model.embed_tokens.weight");
  w->layers.resize(size_t(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l)
    for (const LayerTensorSpec& t : kLayerTensors) w->layers[size_t(l)].*t.member = view(hf_layer_prefix(l) + t.hf);
  w->final_norm = view("model.norm.weight");
  if (c.num_labels > 0) {  // a reward model: no language-model head (LlamaTrain skips it)
    w->lm_head = w->embed;
    w->score = view("score.weight");
  } else {
    w->lm_head = c.tied_embeddings ? w->embed : view("lm_head.weight");
  }
  return w;
}

}  // namespace camelid
