// `camelid train`: pretraining from scratch (a preset and/or shape flags) or continued pretraining
// of any model camelid loads (--init), resumable from its checkpoints (--resume).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/train_args.h"
#include "core/error.h"
#include "core/gguf.h"
#include "model/params.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"
#include "train/distributed.h"
#include "train/presets.h"
#include "train/trainer.h"

namespace camelid::cli {
namespace {

namespace fs = std::filesystem;

struct TrainArgs : LoopArgs {
  std::string init, preset, tokenizer, data_format = "auto";
  int dim = 0, layers = 0, heads = 0, kv_heads = 0, hidden = 0, vocab = 0, ctx = 0, head_dim = 0;
  double rope_theta = 0, init_std = 0.02;
  bool tied = false;
  double peak_gflops = 0;
};

ModelConfig scratch_config(const TrainArgs& a, const Tokenizer* tok) {
  ModelConfig c = train::train_preset(a.preset.empty() ? "tiny" : a.preset);
  auto set = [](int v, int& field) {
    if (v > 0) field = v;
  };
  set(a.dim, c.dim), set(a.layers, c.n_layers), set(a.hidden, c.hidden_dim), set(a.ctx, c.max_seq_len);
  if (a.heads > 0) c.n_heads = a.heads, c.n_kv_heads = a.heads;
  set(a.kv_heads, c.n_kv_heads);
  c.head_dim = a.head_dim > 0 ? a.head_dim : (c.n_heads > 0 ? c.dim / c.n_heads : 0);
  if (a.rope_theta > 0) c.rope_theta = a.rope_theta;
  c.tied_embeddings = a.tied;
  if (a.vocab > 0) c.vocab_size = a.vocab;
  else if (tok) c.vocab_size = tok->vocab_size();
  if (tok) {
    c.bos_id = tok->bos_id() < c.vocab_size ? tok->bos_id() : -1;
    for (int e : tok->eos_ids())
      if (e < c.vocab_size) c.eos_ids.push_back(e);
    if (tok->vocab_size() > c.vocab_size)
      fail("--vocab ", c.vocab_size, " is smaller than the tokenizer's vocabulary (", tok->vocab_size(), ")");
  }
  c.validate("camelid train (shape flags)");
  return c;
}

bool any_text(const std::vector<std::string>& files, train::DataFormat fmt) {
  for (auto& f : files)
    if (train::resolve_format(f, fmt) == train::DataFormat::Text) return true;
  return false;
}

void run(TrainArgs& a) {
  set_threads(a.threads);
  if (a.data.empty()) fail("--data: no training data given");
  if (!a.val_data.empty() && a.val_fraction > 0) fail("--val-data and --val-fraction: give one of them");
  if (!a.resume.empty() && !a.init.empty()) fail("--resume and --init: a resumed run takes its weights from the checkpoint");
  const bool shape_flags = a.dim || a.layers || a.heads || a.kv_heads || a.hidden || a.ctx || a.head_dim || a.tied ||
                           a.rope_theta > 0 || !a.preset.empty();
  if ((!a.init.empty() || !a.resume.empty()) && (shape_flags || a.vocab))
    fail("--preset and shape flags only apply when training from scratch (not with --init or --resume)");
  const train::DataFormat fmt = train::data_format_from_name(a.data_format);
  a.o.schedule.kind = train::lr_kind_from_name(a.lr_schedule);
  a.o.shuffle = !a.no_shuffle;

  // Where the model and its tokenizer come from.
  std::string ckpt, tok_dir;
  if (!a.resume.empty()) ckpt = train::resolve_checkpoint(a.resume);
  std::unique_ptr<Tokenizer> tok;
  const bool need_tok = any_text(a.data, fmt) || any_text(a.val_data, fmt);
  if (!a.tokenizer.empty()) {
    tok = Tokenizer::load(a.tokenizer);
    tok_dir = fs::is_directory(a.tokenizer) ? a.tokenizer : fs::path(a.tokenizer).parent_path().string();
  } else if (!ckpt.empty() || !a.init.empty()) {
    const std::string src = !ckpt.empty() ? ckpt : a.init;
    const bool gguf_file = ckpt.empty() && gguf::File::sniff(src);
    if (!gguf_file) tok_dir = model_dir(src);
    if (need_tok) tok = load_tokenizer_for(src, "");
    else if (!gguf_file && !Tokenizer::available(tok_dir)) tok_dir.clear();
  } else if (need_tok) {
    fail("text data needs a tokenizer: --tokenizer DIR (or --init a model that has one)");
  }
  a.o.source.tokenizer_dir = tok_dir;

  ParamSet ps;
  if (!ckpt.empty() || !a.init.empty()) {
    auto w = load_model(!ckpt.empty() ? ckpt : a.init);
    ps = params_from_weights(*w);
  } else {
    ps = params_init(scratch_config(a, tok.get()), a.o.seed, float(a.init_std));
  }
  const ModelConfig& c = ps.config;
  const int T = a.seq_len > 0 ? a.seq_len : std::min(256, c.max_seq_len > 0 ? c.max_seq_len : 256);

  std::vector<int> stream = train::read_stream(a.data, fmt, tok.get(), c.vocab_size);
  if (stream.empty()) fail("--data: the training data holds no tokens");
  std::optional<train::Windows> val;
  if (!a.val_data.empty()) val.emplace(train::read_stream(a.val_data, fmt, tok.get(), c.vocab_size), T, "--val-data");
  else if (a.val_fraction > 0) val.emplace(train::split_tail(stream, a.val_fraction), T, "--val-fraction's held-out tail");
  train::Windows windows(std::move(stream), T, "--data");

  std::printf("model: %zu parameters (dim %d, %d layers, %d heads, %d kv heads, hidden %d, vocab %d%s)\n", ps.numel(),
              c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.hidden_dim, c.vocab_size, c.tied_embeddings ? ", tied" : "");
  std::printf("data: %zu tokens, %lld windows of %d+1%s; %d rows per step (batch %d x grad-accum %d), %d tokens per step\n",
              windows.tokens(), (long long)windows.count(), T,
              val ? (", held out: " + std::to_string(val->tokens()) + " tokens").c_str() : "", a.o.global_rows(),
              a.o.batch, a.o.grad_accum, a.o.global_rows() * T);
  if (train::Comm::world().size() > 1)
    std::printf("data parallel: %d ranks of %d rows each per step\n", train::Comm::world().size(),
                a.o.global_rows() / train::Comm::world().size());
  if (a.out.empty()) std::printf("note: no --out: no checkpoint will be written\n");
  std::fflush(stdout);

  const size_t matmul_params = weights_view(ps)->matmul_parameters();
  train::Trainer trainer(std::move(ps), std::move(windows), std::move(val), a.o);
  if (!ckpt.empty()) {
    trainer.resume(ckpt);
    std::printf("resumed from %s at step %lld\n", ckpt.c_str(), (long long)trainer.steps_done());
  }

  const int64_t first = trainer.steps_done();
  const RunTotals r = run_and_report(a, trainer, !ckpt.empty());
  const double rate = r.seconds > 0 ? double(r.tokens) / r.seconds : 0;
  const double gflops = 6.0 * double(matmul_params) * rate * 1e-9;
  std::string mfu;
  if (a.peak_gflops > 0) {
    char b[64];
    std::snprintf(b, sizeof b, ", MFU %.1f%% of %.0f GFLOP/s", 100.0 * gflops / a.peak_gflops, a.peak_gflops);
    mfu = b;
  }
  std::printf("trained %lld steps (%zu tokens) of a %zu-parameter model in %.1f s: %.0f tokens/s, %.2f GFLOP/s "
              "(6 x %zu matmul parameters x tokens/s)%s; loss %.4f%s%s%s\n",
              (long long)(trainer.steps_done() - first), r.tokens, trainer.params().numel(), r.seconds, rate, gflops,
              matmul_params, mfu.c_str(), r.last.loss, r.last_val ? (", val loss " + std::to_string(*r.last_val)).c_str() : "",
              trainer.last_checkpoint().empty() ? "" : "; checkpoint ", trainer.last_checkpoint().c_str());
}

const bool reg_train = add_command([](CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* sub = app.add_subcommand("train", "Pretrain a Llama from scratch or continue pretraining a model");
  // Model.
  sub->add_option("--init", a->init, "start from this model (any format camelid loads): continued pretraining");
  sub->add_option("--resume", a->resume, "continue a run from a checkpoint directory, or the newest one in an --out directory");
  sub->add_option("--preset", a->preset, "from scratch: tiny | 25m (shape flags override it; default tiny)");
  sub->add_option("--dim", a->dim, "from scratch: hidden size");
  sub->add_option("--layers", a->layers, "from scratch: layers");
  sub->add_option("--heads", a->heads, "from scratch: attention heads");
  sub->add_option("--kv-heads", a->kv_heads, "from scratch: key/value heads (default --heads)");
  sub->add_option("--head-dim", a->head_dim, "from scratch: head dimension (default dim / heads)");
  sub->add_option("--hidden", a->hidden, "from scratch: MLP intermediate size");
  sub->add_option("--vocab", a->vocab, "from scratch: vocabulary size (default the tokenizer's)");
  sub->add_option("--ctx", a->ctx, "from scratch: max_position_embeddings");
  sub->add_option("--rope-theta", a->rope_theta, "from scratch: RoPE base (default 10000)");
  sub->add_flag("--tied", a->tied, "from scratch: tie lm_head to the embeddings");
  sub->add_option("--init-std", a->init_std, "from scratch: std of the initial matrices");
  sub->add_option("--tokenizer", a->tokenizer, "tokenizer directory or file (text data; copied into checkpoints)");
  // Data.
  sub->add_option("--data", a->data, "training data files (text, .bin/.u32 uint32 ids, .json id array); repeatable")->required();
  sub->add_option("--data-format", a->data_format, "auto | text | ids | json");
  add_loop_options(sub, *a,
                   {"held-out data files (same formats)", "hold out the last fraction of the training stream",
                    "tokens per row (default min(256, context))", "rows per micro-batch",
                    "step s row b uses window (s*B+b) mod n, B = batch x grad-accum",
                    "seed of the initial weights and the data order", "AdamW decoupled weight decay (matrices only)",
                    "micro-batches of held-out windows per validation pass",
                    "checkpoint directory: OUT/checkpoint-STEP/, OUT/loss.svg"});
  sub->add_option("--peak-gflops", a->peak_gflops, "the host's peak f32 GFLOP/s, to report MFU");
  sub->callback([a] { run_loop_command(*a, [&] { run(*a); }); });
});

}  // namespace
}  // namespace camelid::cli
