// Training step throughput of the model side (forward + cross-entropy + backward, no optimizer)
// for a ~25M-parameter Llama: tokens/s, achieved GFLOP/s (6 · params · tokens, the usual MFU
// numerator; attention's T² terms are not counted) and the time of each phase.
//   bench_train [--batch B] [--seq T] [--dim D] [--layers L] [--hidden H] [--heads N] [--vocab V] [--steps S]
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <vector>

#include "bench_args.h"
#include "model/llama_train.h"
#include "model/params.h"

using namespace camelid;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  // bench_args' int_arg skips argv[1] (the model path of the other benches): pass a placeholder.
  ModelConfig c;
  c.dim = int_arg(argc, argv, "--dim", 512);
  c.n_layers = int_arg(argc, argv, "--layers", 6);
  c.hidden_dim = int_arg(argc, argv, "--hidden", 1408);
  c.n_heads = c.n_kv_heads = int_arg(argc, argv, "--heads", 8);
  c.head_dim = c.dim / c.n_heads;
  c.vocab_size = int_arg(argc, argv, "--vocab", 8192);
  c.tied_embeddings = true;
  const int B = int_arg(argc, argv, "--batch", 8), T = int_arg(argc, argv, "--seq", 256);
  const int steps = int_arg(argc, argv, "--steps", 3);
  c.max_seq_len = T;
  ParamSet ps = params_init(c, 1);
  auto w = weights_view(ps);
  const double params = double(ps.numel());
  std::vector<int> tokens(size_t(B) * T), targets(size_t(B) * T);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int(i * 7919 % c.vocab_size), targets[i] = int(i * 104729 % c.vocab_size);
  LlamaTrain model(c);
  std::printf("model: %.1fM parameters (dim %d, %d layers, hidden %d, %d heads, vocab %d, tied); batch %d x %d; %d threads\n",
              params / 1e6, c.dim, c.n_layers, c.hidden_dim, c.n_heads, c.vocab_size, B, T, omp_get_max_threads());
  double best = 1e30, f_best = 0, b_best = 0;
  for (int s = 0; s <= steps; ++s) {  // step 0 warms up (allocation, page faults)
    const auto t0 = Clock::now();
    model.forward(*w, tokens.data(), B, T);
    cross_entropy(model.logits(), targets.data(), B * T, c.vocab_size, 1.f / float(B * T));
    const auto t1 = Clock::now();
    ps.zero_grad();
    model.backward(*w, ps);
    const auto t2 = Clock::now();
    const double f = std::chrono::duration<double>(t1 - t0).count(), b = std::chrono::duration<double>(t2 - t1).count();
    if (s > 0 && f + b < best) best = f + b, f_best = f, b_best = b;
  }
  const double tokens_per_s = double(B) * T / best, flops = 6 * params * tokens_per_s;
  std::printf("step %.3f s (forward+loss %.3f, backward %.3f): %.0f tokens/s, %.1f GFLOP/s (6*params*tokens/s)\n", best,
              f_best, b_best, tokens_per_s, flops / 1e9);
}
