#pragma once
// Hyperparameters of a Llama-family model, read from a Hugging Face config.json or a llama2.c
// header. Every field the Llama family uses is honoured; unknown architectures are refused.
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace camelid {

// Upper bounds on the size fields of a config (config.json or a llama2.c header). Generous: the
// largest Llama (3.1 405B) has hidden 16384, intermediate 53248, 126 layers, 128 heads of 128,
// vocab 128256 and a 128K context; other families reach vocab 256K, head_dim 256 and
// million-token contexts. Tight enough that no product of two fields overflows an int where the
// code keeps one (q_dim, kv_dim), and that a hostile config alone cannot ask for absurd memory:
// every weight is checked against the file it lives in, and what is sized by the context
// (the KV cache) is sized by the context the user asks for, capped by max_position_embeddings.
struct ConfigLimits {
  static constexpr int vocab = 1 << 22;          // 4M tokens
  static constexpr int dim = 1 << 17;            // hidden_size
  static constexpr int hidden = 1 << 20;         // intermediate_size
  static constexpr int layers = 1 << 12;
  static constexpr int heads = 1 << 12;          // attention heads (and kv heads)
  static constexpr int head_dim = 1 << 12;
  static constexpr int q_dim = 1 << 20;          // heads x head_dim
  static constexpr int positions = 1 << 24;      // max_position_embeddings: 16M
};

struct RopeScaling {
  enum class Type { None, Linear, Llama3 } type = Type::None;
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
  int original_max_position = 8192;
};

struct ModelConfig {
  int vocab_size = 0;
  int dim = 0;            // hidden_size
  int hidden_dim = 0;     // intermediate_size
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;       // dim / n_heads unless config.json says otherwise
  int max_seq_len = 0;    // max_position_embeddings
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double norm_eps = 1e-5;
  // Per-pair divisors of the inverse frequencies (GGUF's rope_freqs tensor: Llama 3.1's scaling
  // as llama.cpp stores it); empty = none.
  std::vector<float> rope_freq_factors;
  bool rope_interleaved = false;  // q/k rows in Meta's interleaved pair order (GGUF), see ops::rope
  bool tied_embeddings = false;
  // > 0: a LlamaForSequenceClassification (a reward model, num_labels 1): a head score.weight
  // [num_labels, dim] on the final hidden state instead of the language-model head.
  int num_labels = 0;
  int bos_id = -1;
  std::vector<int> eos_ids;

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }

  // Per-pair inverse frequencies (head_dim / 2 of them) with rope_scaling applied.
  std::vector<float> rope_inv_freq() const;

  // Throws Error naming source and field: a field out of its range (ConfigLimits), heads that do
  // not group, an odd head_dim, non-finite or non-positive rope/norm numbers, ids >= vocab_size.
  void validate(const std::string& source) const;
  nlohmann::json to_json() const;
};

// Parses config.json text; `source` names the file in error messages.
ModelConfig parse_hf_config(const std::string& json_text, const std::string& source);

}  // namespace camelid
