#include "train/presets.h"

#include "core/error.h"

namespace camelid::train {

ModelConfig train_preset(const std::string& name) {
  ModelConfig c;
  c.rope_theta = 10000.0;
  c.norm_eps = 1e-5;
  if (name == "tiny") {
    c.dim = 64, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.hidden_dim = 176, c.vocab_size = 512;
    c.max_seq_len = 256;
  } else if (name == "25m") {
    c.dim = 512, c.n_layers = 6, c.n_heads = 8, c.n_kv_heads = 8, c.hidden_dim = 1376, c.vocab_size = 8192;
    c.max_seq_len = 256;
  } else {
    fail("--preset: unknown preset '", name, "' (tiny or 25m)");
  }
  c.head_dim = c.dim / c.n_heads;
  return c;
}

}  // namespace camelid::train
