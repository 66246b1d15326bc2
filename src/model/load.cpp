#include <algorithm>
#include <cstdio>
#include <iterator>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/gguf.h"
#include "kernels/kernels.h"
#include "model/finite_check.h"
#include "model/weights.h"

namespace camelid {

namespace fs = std::filesystem;

Tensor ModelWeights::own(std::vector<float> values, int64_t rows, int64_t cols) {
  owned.push_back(std::make_unique<std::vector<float>>(std::move(values)));
  return Tensor{owned.back()->data(), DType::F32, rows, cols};
}

Tensor ModelWeights::own_copy(const Tensor& t) {
  owned.push_back(std::make_unique<std::vector<float>>((t.nbytes() + 3) / 4));
  if (t.nbytes()) std::memcpy(owned.back()->data(), t.data, t.nbytes());
  return Tensor{owned.back()->data(), t.dtype, t.rows, t.cols};
}

void ModelWeights::visit(const std::function<void(const Tensor&)>& fn) const {
  fn(embed);
  for (auto& l : layers)
    for (const Tensor* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down})
      fn(*t);
  fn(final_norm);
  if (lm_head.data != embed.data) fn(lm_head);
  if (score.data) fn(score);
}

Tensor ModelWeights::own_f32(const Tensor& t) {
  if (t.dtype == DType::F32) return t;
  std::vector<float> v(size_t(t.numel()));
  to_f32(t.dtype, t.data, v.data(), v.size());
  return own(std::move(v), t.rows, t.cols);
}

void ModelWeights::note_bad_embedding_rows(const Tensor& embedding, const std::string& where) {
  auto bad = nonfinite_rows(embedding);
  if (bad.empty()) return;
  warnings.push_back(where + ": NaN/Inf in " + describe_rows(bad) + " (those tokens are refused as input and never predicted)");
  bad_embed_rows = std::move(bad);
}

size_t ModelWeights::weight_bytes() const {
  size_t n = 0;
  visit([&](const Tensor& t) { n += t.nbytes(); });
  return n;
}

size_t ModelWeights::parameters() const {
  size_t n = 0;
  visit([&](const Tensor& t) { n += size_t(t.numel()); });
  return n;
}

size_t ModelWeights::matmul_parameters() const {
  size_t n = 0;
  visit([&](const Tensor& t) { n += t.rows > 1 ? size_t(t.numel()) : 0; });
  return n - size_t(embed.numel()) + size_t(lm_head.numel()) * (lm_head.data == embed.data);
}

size_t ModelWeights::matmul_bytes() const {
  size_t n = 0;
  visit([&](const Tensor& t) { n += t.rows > 1 ? t.nbytes() : 0; });
  return n - embed.nbytes() + lm_head.nbytes() * (lm_head.data == embed.data);
}

size_t ModelWeights::interleave_for_decode() {
  std::vector<Tensor*> ts;
  for (auto& l : layers)
    for (Tensor* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) ts.push_back(t);
  if (lm_head.data != embed.data) ts.push_back(&lm_head);  // a tied classifier is also read by rows
  std::erase_if(ts, [](const Tensor* t) { return !kernels::interleave_supported(*t); });
  size_t total = 0;
  for (const Tensor* t : ts) total += t->nbytes();
  if (total == 0) return 0;
  // The norms into memory of their own first: a page of the file read after the release could
  // map the whole 2 MiB huge page around it again (measured: 58 MB of released pages back in a
  // 14-layer model's first forward pass, through its 29 norm vectors).
  for (auto& l : layers) l.attn_norm = own_copy(l.attn_norm), l.ffn_norm = own_copy(l.ffn_norm);
  final_norm = own_copy(final_norm);
  auto buf = std::make_unique<HugeBuffer>(total);
  size_t off = 0;
  for (Tensor* t : ts) {
    const Tensor src = *t;
    *t = kernels::interleave(src, buf->data() + off);
    off += src.nbytes();
    const auto* p = static_cast<const uint8_t*>(src.data);
    for (const auto& m : maps)
      if (p >= m->data() && p + src.nbytes() <= m->data() + m->size()) release_pages(p, src.nbytes());
  }
  buffers.push_back(std::move(buf));
  return total;
}

DType ModelWeights::main_dtype() const {
  size_t count[size_t(DType::Count)] = {};
  visit([&](const Tensor& t) { count[size_t(t.dtype)] += size_t(t.numel()); });
  return DType(std::max_element(std::begin(count), std::end(count)) - std::begin(count));
}

namespace {

std::unique_ptr<ModelWeights> load_any(const std::string& path, bool no_mmap) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(path, ": no such file or directory");
  if (fs::is_directory(path, ec)) return load_hf_dir(path, no_mmap);
  if (gguf::File::sniff(path)) return load_gguf(path, no_mmap);
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".safetensors") {
    // "model.safetensors" alone means the current directory, not "/config.json".
    const std::string dir = fs::path(path).parent_path().string();
    return load_hf_dir(dir.empty() ? "." : dir, no_mmap);
  }
  if (ext == ".bin") return load_llama2c(path, no_mmap);
  if (ext == ".gguf") fail(path, ": not a GGUF file (bad magic)");
  fail(path, ": unknown model format (expected a Hugging Face directory, .safetensors, a GGUF file or a llama2.c .bin)");
}

}  // namespace

std::unique_ptr<ModelWeights> load_model(const std::string& path, bool no_mmap) {
  auto w = load_any(path, no_mmap);
  for (auto& msg : w->warnings) std::fprintf(stderr, "warning: %s\n", msg.c_str());
  return w;
}

}  // namespace camelid
