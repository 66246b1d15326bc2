// The per-tensor type choices of llama-quantize for a Llama model: llama_tensor_get_type of
// llama.cpp's src/llama-quant.cpp as of build c392e50 (Feb 2025), for the file types camelid
// writes, without an importance matrix. A mixture is a default type plus exceptions: the
// classifier (or the tied embedding that serves as one) gets Q6_K, and attn_v / ffn_down get
// more bits in the layers where quantization hurts most ("use_more_bits": the first and last
// eighth and every third layer between). Rows whose length is not a multiple of a type's block
// fall back to a 32-block type (or F16), as llama.cpp does.
#include <iterator>

#include "core/error.h"
#include "model/gguf_export.h"

namespace camelid {

namespace {

constexpr QuantType kQuantTypes[] = {
    {"Q4_0", FileType::Q4_0, DType::Q4_0},       {"Q4_1", FileType::Q4_1, DType::Q4_1},
    {"Q5_0", FileType::Q5_0, DType::Q5_0},       {"Q5_1", FileType::Q5_1, DType::Q5_1},
    {"Q8_0", FileType::Q8_0, DType::Q8_0},       {"Q2_K", FileType::Q2_K, DType::Q2_K},
    {"Q3_K_S", FileType::Q3_K_S, DType::Q3_K},   {"Q3_K_M", FileType::Q3_K_M, DType::Q3_K},
    {"Q3_K_L", FileType::Q3_K_L, DType::Q3_K},   {"Q4_K_S", FileType::Q4_K_S, DType::Q4_K},
    {"Q4_K_M", FileType::Q4_K_M, DType::Q4_K},   {"Q5_K_S", FileType::Q5_K_S, DType::Q5_K},
    {"Q5_K_M", FileType::Q5_K_M, DType::Q5_K},   {"Q6_K", FileType::Q6_K, DType::Q6_K},
    {"IQ4_NL", FileType::IQ4_NL, DType::IQ4_NL}, {"IQ4_XS", FileType::IQ4_XS, DType::IQ4_XS},
};

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::char_traits<char>::length(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}
bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// llama_model_quantize_impl's test: 2-D weights other than norms are quantized; the rest copied.
bool quantizable(const ExportTensor& t) {
  return t.ne.size() >= 2 && ends_with(t.name, "weight") && !contains(t.name, "_norm.weight") &&
         !contains(t.name, "ffn_gate_inp.weight");
}

bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

class Recipe {
 public:
  Recipe(const ExportModel& m, const QuantType& q) : m_(m), ft_(q.ftype) {
    for (const ExportTensor& t : m.tensors) {
      if (contains(t.name, "attn_v.weight")) ++n_attention_wv_;
      if (t.name == "output.weight") has_output_ = true;
    }
    n_ffn_down_ = m.n_layers;
  }

  DType choose(const ExportTensor& t, DType new_type) {
    using F = FileType;
    const int n_gqa = m_.n_kv_heads > 0 ? m_.n_heads / m_.n_kv_heads : 1;
    // llama.cpp calls an 80-layer Llama with grouped-query attention a 70B.
    const bool is_70b = m_.n_layers == 80 && m_.n_heads != m_.n_kv_heads;
    const std::string& name = t.name;
    if (name == "output.weight" || (!has_output_ && name == "token_embd.weight")) {
      if (t.ne[0] % 256 != 0) new_type = DType::Q8_0;
      else if (new_type != DType::Q8_0) new_type = DType::Q6_K;
    } else if (name == "token_embd.weight") {
      // no rule for these file types
    } else if (contains(name, "attn_v.weight")) {
      if (ft_ == F::Q2_K) new_type = n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
      else if (ft_ == F::Q3_K_M) new_type = i_attention_wv_ < 2 ? DType::Q5_K : DType::Q4_K;
      else if (ft_ == F::Q3_K_L) new_type = DType::Q5_K;
      else if ((ft_ == F::IQ4_NL || ft_ == F::IQ4_XS) && n_gqa >= 4) new_type = DType::Q5_K;
      else if ((ft_ == F::Q4_K_M || ft_ == F::Q5_K_M) && use_more_bits(i_attention_wv_, n_attention_wv_)) new_type = DType::Q6_K;
      else if (ft_ == F::Q4_K_S && i_attention_wv_ < 4) new_type = DType::Q5_K;
      if (is_70b && (new_type == DType::Q3_K || new_type == DType::Q4_K)) new_type = DType::Q5_K;
      ++i_attention_wv_;
    } else if (contains(name, "ffn_down")) {
      const int i = i_ffn_down_, n = n_ffn_down_;
      if (ft_ == F::Q2_K) new_type = DType::Q3_K;
      else if (ft_ == F::Q3_K_M) new_type = i < n / 16 ? DType::Q5_K : DType::Q4_K;  // non-Falcon
      else if (ft_ == F::Q3_K_L) new_type = DType::Q5_K;
      else if (ft_ == F::Q4_K_M) { if (use_more_bits(i, n)) new_type = DType::Q6_K; }
      else if (i < n / 8 && (ft_ == F::IQ4_NL || ft_ == F::IQ4_XS)) new_type = DType::Q5_K;  // no imatrix
      else if (ft_ == F::Q5_K_M && use_more_bits(i, n)) new_type = DType::Q6_K;
      else if (ft_ == F::Q4_K_S && i < n / 8) new_type = DType::Q5_K;
      ++i_ffn_down_;
    } else if (contains(name, "attn_output.weight")) {
      if (ft_ == F::Q2_K) new_type = DType::Q3_K;
      else if (ft_ == F::Q3_K_M) new_type = DType::Q4_K;
      else if (ft_ == F::Q3_K_L) new_type = DType::Q5_K;
    }
    return fallback(t, new_type);
  }

 private:
  // Rows that do not split into the type's blocks (e.g. a 64-wide model for a k-quant).
  static DType fallback(const ExportTensor& t, DType type) {
    if (row_fits(type, t.ne[0])) return type;
    switch (type) {
      case DType::Q2_K: case DType::Q3_K: case DType::IQ4_XS: type = DType::IQ4_NL; break;
      case DType::Q4_K: type = DType::Q5_0; break;
      case DType::Q5_K: type = DType::Q5_1; break;
      case DType::Q6_K: type = DType::Q8_0; break;
      default:
        fail("tensor '", t.name, "': rows of ", t.ne[0], " values do not split into ", dtype_name(type), " blocks of ",
             dtype_info(type).block, " (llama.cpp has no fallback for that type either)");
    }
    return row_fits(type, t.ne[0]) ? type : DType::F16;
  }

  const ExportModel& m_;
  FileType ft_;
  int n_attention_wv_ = 0, i_attention_wv_ = 0, n_ffn_down_ = 0, i_ffn_down_ = 0;
  bool has_output_ = false;
};

}  // namespace

const QuantType& quant_type_from_name(const std::string& name) {
  std::string up;
  for (char ch : name) up += char(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
  for (const QuantType& q : kQuantTypes)
    if (up == q.name) return q;
  fail("unknown quantization type '", printable_name(name), "' (expected one of ", quant_type_names(), ")");
}

std::string quant_type_names() {
  std::string out;
  for (const QuantType& q : kQuantTypes) out += (out.empty() ? "" : ", ") + std::string(q.name);
  return out;
}

std::vector<DType> quantize_recipe(const ExportModel& m, const QuantType& q) {
  Recipe r(m, q);
  std::vector<DType> types;
  for (const ExportTensor& t : m.tensors) types.push_back(quantizable(t) ? r.choose(t, q.default_type) : t.dtype);
  return types;
}

}  // namespace camelid
