// llama2.c checkpoints ("legacy" version 0 export): 7 int32 header fields (dim, hidden_dim,
// n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means an untied
// classifier follows), then f32 weights, then nothing: the header alone says how long the file
// is, so a file of any other length is refused.
#include <cstring>

#include "core/checked_size.h"
#include "core/error.h"
#include "model/finite_check.h"
#include "model/weights.h"

namespace camelid {

namespace {

constexpr size_t kHeaderBytes = 28;

// Meta's checkpoints rotate interleaved pairs (2i, 2i+1); our forward pass, like HF, rotates
// (i, i + head_dim/2). Permuting the rows of wq/wk once makes the two equivalent.
std::vector<float> interleaved_to_half(const float* w, int n_heads, int head_dim, int cols) {
  std::vector<float> out(size_t(n_heads) * head_dim * cols);
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h)
    for (int i = 0; i < half; ++i)
      for (int p = 0; p < 2; ++p) {
        const float* src = w + (size_t(h) * head_dim + 2 * i + p) * cols;
        float* dst = out.data() + (size_t(h) * head_dim + p * half + i) * cols;
        std::memcpy(dst, src, size_t(cols) * 4);
      }
  return out;
}

// The header's config, every field range-checked before any arithmetic on it.
ModelConfig parse_header(const uint8_t* data, size_t size, const std::string& path) {
  if (size < kHeaderBytes) fail(path, ": truncated llama2.c checkpoint (", size, " bytes, no 28-byte header)");
  int32_t h[7];
  std::memcpy(h, data, sizeof h);
  if (uint32_t(h[0]) == 0x616b3432u)  // "ak42": the newer export versions, with another layout
    fail(path, ": llama2.c export version 1/2 (magic 'ak42') is not supported; export with --version 0");
  struct Field {
    const char* name;
    int max;
  };
  const Field fields[] = {{"dim", ConfigLimits::dim},         {"hidden_dim", ConfigLimits::hidden},
                          {"n_layers", ConfigLimits::layers}, {"n_heads", ConfigLimits::heads},
                          {"n_kv_heads", ConfigLimits::heads}, {"vocab_size", ConfigLimits::vocab},
                          {"seq_len", ConfigLimits::positions}};
  for (int i = 0; i < 7; ++i) {
    // vocab_size alone may be negative (an untied classifier follows); in 64 bits, -INT32_MIN fits.
    const int64_t v = i == 5 ? (h[i] < 0 ? -int64_t(h[i]) : int64_t(h[i])) : int64_t(h[i]);
    if (v <= 0 || v > fields[i].max)
      fail(path, ": header field ", fields[i].name, " = ", h[i], " is invalid (expected 1..", fields[i].max,
           i == 5 ? ", or its negative for an untied classifier" : "", "; not a llama2.c checkpoint?)");
  }
  ModelConfig c;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.vocab_size = h[5] < 0 ? -h[5] : h[5];
  c.tied_embeddings = h[5] > 0;
  c.max_seq_len = h[6];
  if (c.dim % c.n_heads != 0) fail(path, ": dim ", c.dim, " is not a multiple of n_heads ", c.n_heads);
  if (c.n_heads % c.n_kv_heads != 0)
    fail(path, ": n_heads ", c.n_heads, " is not a multiple of n_kv_heads ", c.n_kv_heads);
  c.head_dim = c.dim / c.n_heads;
  if (c.head_dim % 2 != 0) fail(path, ": head size dim / n_heads = ", c.head_dim, " must be even for RoPE");
  c.rope_theta = 10000.0;
  c.norm_eps = 1e-5;
  c.bos_id = 1;  // llama2.c's sentencepiece convention
  c.eos_ids = {2};
  c.validate(path);
  return c;
}

// map (when loading a file) is populated once the size is known to be right.
std::unique_ptr<ModelWeights> build(const uint8_t* data, size_t size, const std::string& path, MappedFile* map) {
  if (reinterpret_cast<uintptr_t>(data) % 4 != 0) fail(path, ": llama2.c checkpoint buffer is not 4-byte aligned");
  auto w = std::make_unique<ModelWeights>();
  w->source = path;
  w->format = "llama2c";
  ModelConfig& c = w->config;
  c = parse_header(data, size, path);

  // Sizes in floats of each section, in file order; 64-bit and overflow-checked (each field is
  // bounded, but their products are not small), then the file must be exactly that long.
  const CheckedSize D = c.dim, H = c.hidden_dim, L = c.n_layers, V = c.vocab_size;
  const CheckedSize Q = c.q_dim(), KV = c.kv_dim(), hs = c.head_dim, S = c.max_seq_len;
  const CheckedSize floats = V * D + L * D + L * D * Q + L * D * KV * 2 + L * Q * D + L * D + L * D * H * 3 + D +
                             S * hs + (c.tied_embeddings ? CheckedSize(0) : V * D);
  const CheckedSize need = floats * 4 + kHeaderBytes;
  if (need.overflowed() || need.value() > size)
    fail(path, ": file has ", size, " bytes but the header implies ",
         need.overflowed() ? std::string("more than 2^64") : std::to_string(need.value()),
         " (truncated or not a llama2.c checkpoint)");
  if (need.value() < size)
    fail(path, ": file has ", size, " bytes but the header implies ", need.value(), ": ", size - need.value(),
         " bytes of trailing data (not a llama2.c version 0 checkpoint, or corrupt)");
  if (map) map->populate();

  const size_t d = size_t(c.dim), hd = size_t(c.hidden_dim), nl = size_t(c.n_layers), v = size_t(c.vocab_size);
  const size_t q = size_t(c.q_dim()), kv = size_t(c.kv_dim()), head = size_t(c.head_dim);
  const float* p = reinterpret_cast<const float*>(data + kHeaderBytes);
  auto take = [&](size_t rows, size_t cols) {
    Tensor t{p, DType::F32, int64_t(rows), int64_t(cols)};
    p += rows * cols;
    return t;
  };
  auto per_layer = [&](size_t rows, size_t cols) {
    std::vector<Tensor> ts;
    for (size_t l = 0; l < nl; ++l) ts.push_back(take(rows, cols));
    return ts;
  };
  w->embed = take(v, d);
  auto attn_norm = per_layer(1, d);
  auto wq = per_layer(q, d);
  auto wk = per_layer(kv, d);
  auto wv = per_layer(kv, d);
  auto wo = per_layer(d, q);
  auto ffn_norm = per_layer(1, d);
  auto w1 = per_layer(hd, d);
  auto w2 = per_layer(d, hd);
  auto w3 = per_layer(hd, d);
  w->final_norm = take(1, d);
  p += size_t(c.max_seq_len) * head;  // precomputed freq_cis (real, imag halves): we compute RoPE ourselves
  w->lm_head = c.tied_embeddings ? w->embed : take(v, d);

  // NaN/Inf: see finite_check.h. The file has no tensor names; messages name the section.
  if (c.tied_embeddings) {
    require_finite(w->embed, path + ": token embedding (also the classifier)");
  } else {
    w->note_bad_embedding_rows(w->embed, path + ": token embedding");
    require_finite(w->lm_head, path + ": classifier");
  }
  require_finite(w->final_norm, path + ": final norm");
  for (size_t l = 0; l < nl; ++l) {
    const std::string at = path + ": layer " + std::to_string(l) + " ";
    require_finite(attn_norm[l], at + "attention norm");
    require_finite(wq[l], at + "wq");
    require_finite(wk[l], at + "wk");
    require_finite(wv[l], at + "wv");
    require_finite(wo[l], at + "wo");
    require_finite(ffn_norm[l], at + "ffn norm");
    require_finite(w1[l], at + "w1");
    require_finite(w2[l], at + "w2");
    require_finite(w3[l], at + "w3");
  }

  for (size_t l = 0; l < nl; ++l) {
    LayerWeights lw;
    lw.attn_norm = attn_norm[l];
    lw.wq = w->own(interleaved_to_half(static_cast<const float*>(wq[l].data), c.n_heads, int(head), int(d)), int64_t(q), int64_t(d));
    lw.wk = w->own(interleaved_to_half(static_cast<const float*>(wk[l].data), c.n_kv_heads, int(head), int(d)), int64_t(kv), int64_t(d));
    lw.wv = wv[l];
    lw.wo = wo[l];
    lw.ffn_norm = ffn_norm[l];
    lw.w_gate = w1[l];
    lw.w_down = w2[l];
    lw.w_up = w3[l];
    w->layers.push_back(lw);
  }
  return w;
}

}  // namespace

std::unique_ptr<ModelWeights> load_llama2c_memory(const uint8_t* data, size_t size, const std::string& path) {
  return build(data, size, path, nullptr);
}

std::unique_ptr<ModelWeights> load_llama2c(const std::string& path, bool no_mmap) {
  auto map = std::make_unique<MappedFile>(path, no_mmap, /*populate_now=*/false);
  auto w = build(map->data(), map->size(), path, map.get());
  w->maps.push_back(std::move(map));
  return w;
}

}  // namespace camelid
