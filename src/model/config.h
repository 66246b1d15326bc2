#pragma once
// Hyperparameters of a Llama-family model, read from a Hugging Face config.json or a llama2.c
// header. Every field the Llama family uses is honoured; unknown architectures are refused.
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace camelid {

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
  bool tied_embeddings = false;
  int bos_id = -1;
  std::vector<int> eos_ids;

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }

  // Per-pair inverse frequencies (head_dim / 2 of them) with rope_scaling applied.
  std::vector<float> rope_inv_freq() const;

  void validate(const std::string& source) const;  // throws Error naming source and field
  nlohmann::json to_json() const;
};

// Parses config.json text; `source` names the file in error messages.
ModelConfig parse_hf_config(const std::string& json_text, const std::string& source);

}  // namespace camelid
