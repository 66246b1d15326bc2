// llama2.c checkpoints: 7 int32 header fields (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len; a negative vocab_size means an untied classifier follows), then f32 weights.
#include <cstring>

#include "core/error.h"
#include "model/weights.h"

namespace camelid {

namespace {

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

}  // namespace

std::unique_ptr<ModelWeights> load_llama2c(const std::string& path, bool no_mmap) {
  auto w = std::make_unique<ModelWeights>();
  w->maps.push_back(std::make_unique<MappedFile>(path, no_mmap));
  const MappedFile& f = *w->maps.back();
  w->source = path;
  w->format = "llama2c";
  if (f.size() < 28) fail(path, ": truncated llama2.c checkpoint (no 28-byte header)");
  int32_t h[7];
  std::memcpy(h, f.data(), sizeof h);
  const char* names[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                         "seq_len"};
  for (int i = 0; i < 7; ++i)
    if (h[i] == 0 || (i != 5 && h[i] < 0) || h[i] > (1 << 24))
      fail(path, ": header field ", names[i], " = ", h[i], " is invalid");

  ModelConfig& c = w->config;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.vocab_size = h[5] < 0 ? -h[5] : h[5];
  c.tied_embeddings = h[5] > 0;
  c.max_seq_len = h[6];
  if (c.dim % c.n_heads != 0) fail(path, ": dim ", c.dim, " is not a multiple of n_heads ", c.n_heads);
  c.head_dim = c.dim / c.n_heads;
  c.rope_theta = 10000.0;
  c.norm_eps = 1e-5;
  c.bos_id = 1;  // llama2.c's sentencepiece convention
  c.eos_ids = {2};
  c.validate(path);

  // Sizes in floats of each section, in file order.
  const size_t D = c.dim, H = c.hidden_dim, L = c.n_layers, V = c.vocab_size;
  const size_t Q = size_t(c.q_dim()), KV = size_t(c.kv_dim()), hs = c.head_dim;
  const size_t need = V * D + L * D + L * D * Q + 2 * L * D * KV + L * Q * D + L * D +
                      2 * L * D * H + L * H * D + D + c.max_seq_len * hs + (c.tied_embeddings ? 0 : V * D);
  if (f.size() - 28 < need * 4)
    fail(path, ": file has ", f.size(), " bytes but the header implies ", 28 + need * 4,
         " (truncated or not a llama2.c checkpoint)");

  const float* p = reinterpret_cast<const float*>(f.data() + 28);
  auto take = [&](size_t rows, size_t cols) {
    Tensor t{p, DType::F32, int64_t(rows), int64_t(cols)};
    p += rows * cols;
    return t;
  };
  auto per_layer = [&](size_t rows, size_t cols) {
    std::vector<Tensor> ts;
    for (size_t l = 0; l < L; ++l) ts.push_back(take(rows, cols));
    return ts;
  };
  w->embed = take(V, D);
  auto attn_norm = per_layer(1, D);
  auto wq = per_layer(Q, D);
  auto wk = per_layer(KV, D);
  auto wv = per_layer(KV, D);
  auto wo = per_layer(D, Q);
  auto ffn_norm = per_layer(1, D);
  auto w1 = per_layer(H, D);
  auto w2 = per_layer(D, H);
  auto w3 = per_layer(H, D);
  w->final_norm = take(1, D);
  p += c.max_seq_len * hs;  // precomputed freq_cis (real, imag halves): we compute RoPE ourselves
  w->lm_head = c.tied_embeddings ? w->embed : take(V, D);

  for (size_t l = 0; l < L; ++l) {
    LayerWeights lw;
    lw.attn_norm = attn_norm[l];
    lw.wq = w->own(interleaved_to_half(static_cast<const float*>(wq[l].data), c.n_heads, hs, D), Q, D);
    lw.wk = w->own(interleaved_to_half(static_cast<const float*>(wk[l].data), c.n_kv_heads, hs, D), KV, D);
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

}  // namespace camelid
