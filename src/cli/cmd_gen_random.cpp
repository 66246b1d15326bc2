// `camelid gen-random`: writes a random HF-layout checkpoint of a chosen shape.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "model/random_model.h"

namespace camelid::cli {
namespace {

struct RandArgs {
  std::string out, preset, dtype = "f32";
  int dim = 0, hidden = 0, layers = 0, heads = 0, kv_heads = 0, vocab = 0, head_dim = 0, max_pos = 0;
  double rope_theta = 0;
  bool tied = false;
  uint64_t seed = 1234;
};

void run(const RandArgs& a) {
  RandomModelSpec s = random_model_preset(a.preset.empty() ? "tiny" : a.preset);
  ModelConfig& c = s.config;
  auto set = [](int v, int& field) { if (v > 0) field = v; };
  set(a.dim, c.dim), set(a.hidden, c.hidden_dim), set(a.layers, c.n_layers), set(a.heads, c.n_heads);
  set(a.vocab, c.vocab_size), set(a.max_pos, c.max_seq_len);
  c.n_kv_heads = a.kv_heads > 0 ? a.kv_heads : (a.heads > 0 ? a.heads : c.n_kv_heads);
  c.head_dim = a.head_dim > 0 ? a.head_dim : c.dim / c.n_heads;
  if (a.rope_theta > 0) c.rope_theta = a.rope_theta;
  c.tied_embeddings = a.tied;
  s.dtype = dtype_from_name(a.dtype);
  s.seed = a.seed;
  write_random_model(a.out, s);
  std::printf("wrote %s (%s)\n", a.out.c_str(), c.to_json().dump().c_str());
}

const bool reg_gen_random = add_command([](CLI::App& app) {
  auto a = std::make_shared<RandArgs>();
  auto* sub = app.add_subcommand("gen-random", "Write a random Llama checkpoint (HF layout)");
  sub->add_option("-o,--out", a->out, "output directory")->required();
  sub->add_option("--preset", a->preset, "bench-450m | small | tiny");
  sub->add_option("--dim", a->dim, "hidden size");
  sub->add_option("--hidden", a->hidden, "intermediate size");
  sub->add_option("--layers", a->layers, "layers");
  sub->add_option("--heads", a->heads, "attention heads");
  sub->add_option("--kv-heads", a->kv_heads, "key/value heads");
  sub->add_option("--head-dim", a->head_dim, "head dimension (default dim / heads)");
  sub->add_option("--vocab", a->vocab, "vocabulary size");
  sub->add_option("--max-pos", a->max_pos, "max_position_embeddings");
  sub->add_option("--rope-theta", a->rope_theta, "RoPE base");
  sub->add_flag("--tied", a->tied, "tie lm_head to the embeddings");
  sub->add_option("--dtype", a->dtype, "f32 | bf16 | f16");
  sub->add_option("--seed", a->seed, "random seed");
  sub->callback([a] { run(*a); });
});

}  // namespace
}  // namespace camelid::cli
