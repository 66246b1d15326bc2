// GGUF models (llama.cpp, ollama, LM Studio) of architecture `llama`: hyperparameters from the
// `llama.*` keys, tensors by llama.cpp's names, each in its own type (files mix types), viewed in
// place in the map (no copy, no f32 widening). q/k rows stay in Meta's interleaved RoPE order
// (llama.cpp's converter permutes them): the forward pass rotates interleaved pairs instead.
#include <algorithm>
#include <cstdint>

#include "core/error.h"
#include "core/gguf.h"
#include "model/finite_check.h"
#include "model/tensor_names.h"
#include "model/weights.h"

namespace camelid {

namespace {

ModelConfig config_from_gguf(const gguf::File& f) {
  const std::string& src = f.source();
  const std::string arch = f.get_string("general.architecture", "");
  if (arch != "llama")
    fail(src, ": general.architecture = '", printable_name(arch), "' is not supported (camelid runs 'llama': Llama 2, Code Llama, Llama 3.x and their fine-tunes)");
  auto key = [](const char* k) { return std::string("llama.") + k; };
  ModelConfig c;
  c.dim = int(f.get_int(key("embedding_length"), 1, ConfigLimits::dim));
  c.hidden_dim = int(f.get_int(key("feed_forward_length"), 1, ConfigLimits::hidden));
  c.n_layers = int(f.get_int(key("block_count"), 1, ConfigLimits::layers));
  c.n_heads = int(f.get_int(key("attention.head_count"), 1, ConfigLimits::heads));
  c.n_kv_heads = int(f.get_int(key("attention.head_count_kv"), 1, ConfigLimits::heads, c.n_heads));
  c.head_dim = int(f.get_int(key("attention.key_length"), 1, ConfigLimits::head_dim, c.dim / c.n_heads));
  if (f.find(key("attention.value_length")) &&
      f.get_int(key("attention.value_length"), 1, ConfigLimits::head_dim) != c.head_dim)
    fail(src, ": llama.attention.value_length differs from key_length (not a Llama model)");
  const int64_t rot = f.get_int(key("rope.dimension_count"), 1, ConfigLimits::head_dim, c.head_dim);
  if (rot != c.head_dim)
    fail(src, ": llama.rope.dimension_count = ", rot, " but heads have ", c.head_dim, " dimensions (partial RoPE is not Llama)");
  c.max_seq_len = int(f.get_int(key("context_length"), 1, ConfigLimits::positions));
  c.rope_theta = f.get_float(key("rope.freq_base"), 10000.0);
  c.norm_eps = f.get_float(key("attention.layer_norm_rms_epsilon"), 1e-5);
  c.rope_interleaved = true;

  const std::string scaling = f.get_string(key("rope.scaling.type"), "none");
  if (scaling == "linear") {
    c.rope_scaling.type = RopeScaling::Type::Linear;
    c.rope_scaling.factor = f.get_float(key("rope.scaling.factor"), 1.0);
    if (!(c.rope_scaling.factor >= 1.0 && c.rope_scaling.factor <= 1024.0))
      fail(src, ": llama.rope.scaling.factor = ", c.rope_scaling.factor, " is out of range [1, 1024]");
  } else if (scaling != "none") {
    fail(src, ": llama.rope.scaling.type = '", printable_name(scaling), "' is not supported (none, linear; Llama 3.1's "
         "scaling comes as the rope_freqs tensor)");
  } else if (f.find(key("rope.scale_linear"))) {  // older files
    c.rope_scaling.type = RopeScaling::Type::Linear;
    c.rope_scaling.factor = f.get_float(key("rope.scale_linear"), 1.0);
    if (!(c.rope_scaling.factor >= 1.0 && c.rope_scaling.factor <= 1024.0))
      fail(src, ": llama.rope.scale_linear = ", c.rope_scaling.factor, " is out of range [1, 1024]");
  }

  // The vocabulary: the embedding's row count is what the weights hold; the key must agree.
  const gguf::TensorInfo* emb = f.tensor("token_embd.weight");
  if (!emb) fail(src, ": tensor 'token_embd.weight' is missing");
  if (emb->ne.size() != 2) fail(src, ": tensor 'token_embd.weight' must have 2 dimensions");
  if (emb->ne[1] > ConfigLimits::vocab) fail(src, ": token_embd.weight has ", emb->ne[1], " rows, more than ", ConfigLimits::vocab);
  c.vocab_size = int(emb->ne[1]);
  if (f.find(key("vocab_size")) && f.get_int(key("vocab_size"), 1, ConfigLimits::vocab) != c.vocab_size)
    fail(src, ": llama.vocab_size = ", f.get_int(key("vocab_size"), 1, ConfigLimits::vocab), " but token_embd.weight has ",
         c.vocab_size, " rows");
  c.tied_embeddings = f.tensor("output.weight") == nullptr;

  auto id = [&](const char* k) { return int(f.get_int(k, -1, c.vocab_size - 1, -1)); };
  c.bos_id = id("tokenizer.ggml.bos_token_id");
  for (const char* k : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
    if (int e = id(k); e >= 0 && std::find(c.eos_ids.begin(), c.eos_ids.end(), e) == c.eos_ids.end()) c.eos_ids.push_back(e);
  c.validate(src);
  return c;
}

class GgufTensors {
 public:
  GgufTensors(const gguf::File& f, ModelWeights& w) : f_(f), w_(w) {
    used_.assign(f.tensors().size(), false);
  }

  // The named tensor as a [rows, cols] view, checked against the shape the config implies.
  Tensor get(const std::string& name, int64_t rows, int64_t cols, bool vector = false, bool embedding = false) {
    const gguf::TensorInfo* t = f_.tensor(name);
    if (!t) fail(f_.source(), ": tensor '", name, "' is missing");
    used_[size_t(t - f_.tensors().data())] = true;
    const std::string where = f_.source() + ": tensor '" + name + "'";
    const std::vector<int64_t> want = vector ? std::vector<int64_t>{cols} : std::vector<int64_t>{cols, rows};
    if (t->ne != want) {
      std::string got, exp;
      for (auto d : t->ne) got += (got.empty() ? "" : ", ") + std::to_string(d);
      for (auto d : want) exp += (exp.empty() ? "" : ", ") + std::to_string(d);
      fail(where, ": dimensions [", got, "] do not match the model's hyperparameters (expected [", exp, "])");
    }
    if (!t->supported) dtype_from_ggml(t->ggml_type, where);  // throws, naming the tensor and its type
    Tensor out{t->data, t->dtype, rows, cols};
    // Float elements are read whole: a file with a small general.alignment may misplace them.
    if (!is_quantized(out.dtype) && reinterpret_cast<uintptr_t>(out.data) % dtype_size(out.dtype) != 0)
      out = w_.own_copy(out);
    if (embedding && !w_.config.tied_embeddings) {
      w_.note_bad_embedding_rows(out, where);
    } else {
      require_finite(out, where);
    }
    return out;
  }

  // Norms and other vectors are used every step in f32: widened once when stored otherwise.
  Tensor get_f32_vector(const std::string& name, int64_t n) { return w_.own_f32(get(name, 1, n, true)); }

  bool has(const std::string& name) const { return f_.tensor(name) != nullptr; }

  // A tensor the model did not take means another architecture or a corrupt file.
  void check_unused() const {
    for (size_t i = 0; i < used_.size(); ++i)
      if (!used_[i])
        fail(f_.source(), ": unexpected tensor '", printable_name(f_.tensors()[i].name), "' (not part of a Llama model)");
  }

 private:
  const gguf::File& f_;
  ModelWeights& w_;
  std::vector<bool> used_;
};

void assemble(ModelWeights& w, const gguf::File& f) {
  const ModelConfig& c = w.config;
  GgufTensors src(f, w);
  w.embed = src.get("token_embd.weight", c.vocab_size, c.dim, false, /*embedding=*/true);
  for (int l = 0; l < c.n_layers; ++l) {
    w.layers.push_back(read_layer(src, gguf_layer_prefix(l), &LayerTensorSpec::gguf, c));
  }
  w.final_norm = src.get_f32_vector("output_norm.weight", c.dim);
  w.lm_head = c.tied_embeddings ? w.embed : src.get("output.weight", c.vocab_size, c.dim);
  if (src.has("rope_freqs.weight")) {
    // Llama 3.1's frequency scaling as llama.cpp stores it: one divisor per rotated pair.
    const Tensor t = src.get_f32_vector("rope_freqs.weight", c.head_dim / 2);
    const float* v = static_cast<const float*>(t.data);
    for (int i = 0; i < c.head_dim / 2; ++i)
      if (!(v[i] > 0)) fail(f.source(), ": rope_freqs.weight[", i, "] = ", v[i], " (must be positive)");
    w.config.rope_freq_factors.assign(v, v + c.head_dim / 2);
  }
  src.check_unused();
}

std::unique_ptr<ModelWeights> from_file(std::unique_ptr<gguf::File> f) {
  auto w = std::make_unique<ModelWeights>();
  w->source = f->source();
  w->format = "gguf";
  w->config = config_from_gguf(*f);
  assemble(*w, *f);
  if (auto map = f->release_map()) w->maps.push_back(std::move(map));
  return w;
}

}  // namespace

std::unique_ptr<ModelWeights> load_gguf(const std::string& path, bool no_mmap) {
  return from_file(gguf::File::open(path, no_mmap));
}

std::unique_ptr<ModelWeights> load_gguf_memory(const uint8_t* data, size_t size, const std::string& path) {
  return from_file(gguf::File::parse(data, size, path));
}

}  // namespace camelid
