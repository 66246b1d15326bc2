#include "cli/pref_args.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/common.h"
#include "core/error.h"
#include "core/gguf.h"
#include "core/json.h"

namespace camelid::cli {

namespace fs = std::filesystem;

void add_pref_options(CLI::App* sub, PrefArgs& a) {
  sub->add_option("--init,-m", a.init, "the starting model (any format camelid loads)")->required();
  sub->add_option("--data", a.data,
                  "JSONL preference pairs: {\"prompt\", \"chosen\", \"rejected\"[, \"margin\"]} (prompt: text or "
                  "chat messages), or prompt_ids/chosen_ids/rejected_ids")
      ->required();
  sub->add_option("--tokenizer", a.tokenizer, "tokenizer directory or file (default the model's)");
  sub->add_option("-o,--out", a.out, "checkpoint directory: OUT/checkpoint-STEP/ (Hugging Face), OUT/loss.svg");
  sub->add_option("--log-json", a.log_json, "one JSON line per step");
  sub->add_option("--steps", a.steps, "optimizer steps");
  sub->add_option("--batch,-b", a.batch, "pairs per micro-batch");
  sub->add_option("--grad-accum", a.grad_accum, "micro-batches per optimizer step");
  sub->add_option("--lr", a.lr, "peak learning rate");
  sub->add_option("--min-lr", a.min_lr, "learning rate at the last step (cosine)");
  sub->add_option("--warmup", a.warmup, "steps of linear warmup");
  sub->add_option("--lr-schedule", a.lr_schedule, "constant | cosine (after warmup; default constant)");
  sub->add_option("--beta1", a.adamw.beta1, "AdamW beta1");
  sub->add_option("--beta2", a.adamw.beta2, "AdamW beta2");
  sub->add_option("--eps", a.adamw.eps, "AdamW eps");
  sub->add_option("--weight-decay", a.adamw.weight_decay, "AdamW decoupled weight decay (matrices and LoRA adapters, never norms)");
  sub->add_option("--clip", a.clip, "clip gradients to this global L2 norm (0: off)");
  sub->add_flag("--no-shuffle", a.no_shuffle, "step s takes pairs (s*P + i) mod n, P = batch x grad-accum");
  sub->add_option("--seed", a.seed, "seed of the pair order (and of a new score head)");
  sub->add_option("--save-every", a.save_every, "steps between checkpoints (and at the end)");
  sub->add_option("--resume", a.resume,
                  "continue a run from a checkpoint directory, or the newest one in an --out directory (same --init, "
                  "data and flags)");
  add_threads_option(sub, a.threads);
}

train::LrSchedule pref_schedule(const PrefArgs& a) {
  train::LrSchedule s;
  s.kind = train::lr_kind_from_name(a.lr_schedule);
  s.lr = a.lr, s.min_lr = a.min_lr, s.warmup = a.warmup;
  return s;
}

void fill_pref_options(const PrefArgs& a, const std::string& tokenizer_dir, train::PrefOptions& o) {
  o.batch = a.batch, o.grad_accum = a.grad_accum, o.steps = a.steps;
  o.schedule = pref_schedule(a);
  o.adamw = a.adamw, o.clip = a.clip, o.shuffle = !a.no_shuffle, o.seed = a.seed, o.save_every = a.save_every;
  o.out_dir = a.out;
  o.source.tokenizer_dir = tokenizer_dir;
}

std::unique_ptr<std::ofstream> open_step_log(const std::string& path, bool append) {
  if (path.empty()) return nullptr;
  auto log = std::make_unique<std::ofstream>(path, append ? std::ios::app : std::ios::trunc);
  if (!*log) fail("--log-json: cannot open ", path);
  return log;
}

void write_step_log(std::ofstream* log, const nlohmann::json& j) {
  if (!log) return;
  *log << dump_json(j) << "\n";
  log->flush();
}

void exit_if_interrupted(bool finished, int64_t steps_done, const std::string& out, const std::string& last_ckpt) {
  if (finished) return;
  std::printf("interrupted at step %lld: %s\n", (long long)steps_done,
              out.empty() ? "nothing saved (no --out)" : ("checkpoint " + last_ckpt).c_str());
  std::fflush(stdout);
  std::exit(130);
}

PrefInputs load_pref_inputs(const PrefArgs& a, bool as_params) {
  PrefInputs in;
  std::shared_ptr<ModelWeights> w = load_model(a.init);
  const ModelConfig config = w->config;
  if (as_params) in.ps = params_from_weights(*w);
  else in.weights = w;
  w.reset();
  const bool gguf_file = gguf::File::sniff(a.init);
  if (!a.tokenizer.empty()) {
    in.tok = load_tokenizer_for(a.init, a.tokenizer);
    in.tokenizer_dir = fs::is_directory(a.tokenizer) ? a.tokenizer : fs::path(a.tokenizer).parent_path().string();
  } else if (gguf_file || Tokenizer::available(model_dir(a.init))) {
    in.tok = load_tokenizer_for(a.init, "");
    if (!gguf_file) in.tokenizer_dir = model_dir(a.init);
  }
  train::PreferenceEncoder enc;
  enc.tok = in.tok.get();
  enc.eos_ids = config.eos_ids;
  if (enc.eos_ids.empty() && in.tok) enc.eos_ids = in.tok->eos_ids();
  enc.tmpl = [&]() -> const ChatTemplate* {
    if (!in.tmpl && in.tok) in.tmpl = std::make_unique<ChatTemplate>(load_chat_template_for(a.init, in.tok.get()));
    return in.tmpl.get();
  };
  in.pairs = train::read_preferences(a.data, enc, config.vocab_size);
  return in;
}

}  // namespace camelid::cli
