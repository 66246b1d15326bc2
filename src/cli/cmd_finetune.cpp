// `camelid finetune`: supervised fine-tuning on chat / Alpaca / pre-tokenized JSONL (train/sft_data.h:
// loss on assistant tokens only), of the whole model (HF checkpoints, as `train --init`) or of a
// LoRA adapter over a frozen base in any format camelid loads, quantized GGUF included (QLoRA;
// PEFT checkpoints). The loop is train::Trainer's: schedule, clipping, accumulation, validation,
// checkpoints, Ctrl-C, --resume, MPI data parallel.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chat/chat_template.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/interrupt.h"
#include "cli/train_args.h"
#include "cli/train_progress.h"
#include "core/error.h"
#include "core/gguf.h"
#include "core/json.h"
#include "model/lora.h"
#include "model/lora_io.h"
#include "model/params.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"
#include "train/distributed.h"
#include "train/sft_data.h"
#include "train/trainer.h"

namespace camelid::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct FinetuneArgs {
  std::string model, resume, lora_init, tokenizer, chat_template, out, log_json, lr_schedule = "cosine", lora_targets = "q,k,v,o";
  std::vector<std::string> data, val_data;
  int seq_len = 0, threads = 0, lora_r = 0;
  double val_fraction = 0, lora_alpha = 0, lora_dropout = 0;
  bool no_shuffle = false, progress = false, quiet = false;
  train::TrainOptions o;
};

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open");
  return {std::istreambuf_iterator<char>(f), {}};
}

std::vector<LoraTarget> parse_targets(const std::string& list) {
  std::vector<LoraTarget> out;
  std::stringstream ss(list);
  for (std::string t; std::getline(ss, t, ',');)
    if (!t.empty()) out.push_back(lora_target_from_name(t));
  return out;
}

// OUT/NAME for each model (or adapter) file of the final checkpoint, so that `-m OUT` / `--lora OUT`
// load the result: hard links where the filesystem allows (no second copy), each put in place
// by rename.
void publish_final(const std::string& ckpt, const std::string& out) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(ckpt, ec)) {
    const std::string name = e.path().filename().string();
    if (name == "optimizer.safetensors" || name == "trainer_state.json" || !e.is_regular_file()) continue;
    const fs::path to = fs::path(out) / name, tmp = fs::path(out) / (".tmp-final-" + name);
    fs::remove(tmp, ec);
    fs::create_hard_link(e.path(), tmp, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(e.path(), tmp, fs::copy_options::overwrite_existing, ec);
      if (ec) fail(tmp.string(), ": cannot write (", ec.message(), ")");
    }
    fs::rename(tmp, to, ec);
    if (ec) fail(to.string(), ": cannot rename into place (", ec.message(), ")");
  }
}

void run(FinetuneArgs& a) {
  set_threads(a.threads);
  if (a.data.empty()) fail("--data: no training data given");
  if (!a.val_data.empty() && a.val_fraction > 0) fail("--val-data and --val-fraction: give one of them");
  a.o.schedule.kind = train::lr_kind_from_name(a.lr_schedule);
  a.o.shuffle = !a.no_shuffle;

  std::string ckpt;
  if (!a.resume.empty()) ckpt = train::resolve_checkpoint(a.resume);
  const bool resume_lora = !ckpt.empty() && fs::exists(fs::path(ckpt) / "adapter_config.json");
  const bool lora = a.lora_r > 0 || resume_lora || !a.lora_init.empty();
  if (!a.lora_init.empty() && (a.lora_r > 0 || !ckpt.empty())) fail("--lora-init: give it without --lora-r or --resume");
  if (!ckpt.empty() && !resume_lora && a.lora_r > 0) fail("--resume: ", ckpt, " is a full fine-tuning checkpoint, but --lora-r was given");

  // Tokenizer and chat template: the model's (-m), or --tokenizer / --chat-template. Loaded
  // lazily in effect: pre-tokenized data needs neither, and the error shows only if a chat line needs them.
  std::unique_ptr<Tokenizer> tok;
  std::optional<ChatTemplate> tmpl;
  std::string tok_error;
  try {
    tok = load_tokenizer_for(a.model, a.tokenizer);
    if (!a.chat_template.empty()) {
      auto text = [&](int id) { return id >= 0 && id < tok->vocab_size() ? tok->token_text(id) : std::string(); };
      tmpl.emplace(read_text(a.chat_template), text(tok->bos_id()), text(tok->eos_ids().empty() ? -1 : tok->eos_ids()[0]));
    } else {
      tmpl.emplace(load_chat_template_for(a.model, tok.get()));
    }
  } catch (const Error& e) {
    tok_error = e.what();
    tok.reset();
    tmpl.reset();
  }
  std::string tok_dir;
  if (!a.tokenizer.empty()) tok_dir = fs::is_directory(a.tokenizer) ? a.tokenizer : fs::path(a.tokenizer).parent_path().string();
  else if (!gguf::File::sniff(a.model) && Tokenizer::available(model_dir(a.model))) tok_dir = model_dir(a.model);
  a.o.source.tokenizer_dir = tok_dir;

  // The model.
  ParamSet ps;
  train::LoraTraining lt;
  if (lora) {
    lt.base = std::shared_ptr<ModelWeights>(load_model(a.model));
    if (resume_lora || !a.lora_init.empty()) {
      lt.adapter = load_lora(resume_lora ? ckpt : a.lora_init, lt.base->config);
      for (Param& p : lt.adapter->params.params) p.trainable = true, p.decay = true, p.grad.assign(p.value.size(), 0.f);
    } else {
      LoraConfig lc;
      lc.r = a.lora_r;
      lc.alpha = a.lora_alpha > 0 ? a.lora_alpha : 2.0 * a.lora_r;
      lc.dropout = a.lora_dropout;
      lc.targets = parse_targets(a.lora_targets);
      lc.base_model = a.model;
      lt.adapter = std::make_shared<LoraAdapter>(lora_init(lc, lt.base->config, a.o.seed));
    }
  } else {
    ps = params_from_weights(*load_model(!ckpt.empty() ? ckpt : a.model));
  }
  const ModelConfig& c = lora ? lt.base->config : ps.config;

  // The data.
  train::SftRenderer r;
  r.tok = tok.get();
  r.tmpl = tmpl ? &*tmpl : nullptr;
  r.now = int64_t(std::time(nullptr));
  r.vocab = c.vocab_size;
  std::vector<train::SftExample> ex, vex;
  try {
    ex = train::read_sft_files(a.data, r);
    if (!a.val_data.empty()) vex = train::read_sft_files(a.val_data, r);
  } catch (const Error& e) {
    if (!tok_error.empty() && std::string(e.what()).find("need the model's tokenizer") != std::string::npos)
      fail(e.what(), " (", tok_error, ")");
    throw;
  }
  if (a.val_fraction > 0) vex = train::split_examples_tail(ex, a.val_fraction);
  const int ctx = c.max_seq_len > 0 ? c.max_seq_len : 4096;
  const int T = a.seq_len > 0 ? a.seq_len : std::min(train::longest_row(ex), ctx);
  const int pad = !c.eos_ids.empty() ? c.eos_ids[0] : 0;
  auto rows = std::make_shared<train::SftRows>(std::move(ex), T, pad);
  std::shared_ptr<train::SftRows> vrows;
  if (!vex.empty()) vrows = std::make_shared<train::SftRows>(std::move(vex), T, pad);

  if (lora) {
    const LoraConfig& lc = lt.adapter->config;
    std::string targets;
    for (LoraTarget t : lc.targets) targets += std::string(targets.empty() ? "" : ",") + lora_target(t).short_name;
    std::printf("LoRA: r %d, alpha %g, dropout %g, targets %s: %zu trainable parameters over a frozen %zu-parameter base\n",
                lc.r, lc.alpha, lc.dropout, targets.c_str(), lt.adapter->params.numel(), lt.base->matmul_parameters());
  } else {
    std::printf("full fine-tuning: %zu parameters\n", ps.numel());
  }
  std::printf("data: %lld examples (%zu tokens, %lld assistant targets), one example per row of %d tokens, padded",
              (long long)rows->count(), rows->tokens(), (long long)rows->target_tokens(), T);
  if (rows->truncated()) std::printf("; %lld examples longer than %d+1 tokens truncated", (long long)rows->truncated(), T);
  if (rows->dropped()) std::printf("; %lld dropped (no assistant token left after truncation)", (long long)rows->dropped());
  if (vrows) std::printf("; held out: %lld examples", (long long)vrows->count());
  std::printf("\n%d rows per step (batch %d x grad-accum %d)\n", a.o.global_rows(), a.o.batch, a.o.grad_accum);
  if (a.out.empty()) std::printf("note: no --out: no checkpoint will be written\n");
  std::fflush(stdout);

  std::unique_ptr<train::Trainer> tr =
      lora ? std::make_unique<train::Trainer>(lt, rows, vrows, a.o) : std::make_unique<train::Trainer>(std::move(ps), rows, vrows, a.o);
  if (!ckpt.empty()) {
    tr->resume(ckpt);
    std::printf("resumed from %s at step %lld\n", ckpt.c_str(), (long long)tr->steps_done());
  }

  std::unique_ptr<std::ofstream> log;
  if (!a.log_json.empty()) {
    log = std::make_unique<std::ofstream>(a.log_json, ckpt.empty() ? std::ios::trunc : std::ios::app);
    if (!*log) fail("--log-json: cannot open ", a.log_json);
  }
  TrainStepProgress bar(a.progress, a.o.steps);
  double seconds = 0;
  size_t tokens = 0;
  train::StepLog last;
  const int64_t plain_every = std::max<int64_t>(1, a.o.steps / 20);
  auto on_step = [&](const train::StepLog& l) {
    seconds += l.seconds, tokens += tr->tokens_per_step(), last = l;
    if (log) {
      json j = {{"step", l.step}, {"loss", l.loss}, {"lr", l.lr}, {"grad_norm", l.grad_norm}, {"tokens_per_s", l.tokens_per_s}};
      if (l.val_loss) j["val_loss"] = *l.val_loss;
      *log << dump_json(j) << "\n";
      log->flush();
    }
    const double rate = seconds > 0 ? double(tokens) / seconds : 0;
    const double eta = rate > 0 ? double(a.o.steps - l.step) * double(tr->tokens_per_step()) / rate : 0;
    if (a.quiet) {
    } else if (bar.enabled()) {
      bar.update(l, rate, eta);
    } else if (l.step % plain_every == 0 || l.val_loss || l.step == a.o.steps) {
      std::fprintf(stderr, "step %lld/%lld loss %.4f%s lr %.2e grad norm %.3g %.0f tok/s\n", (long long)l.step,
                   (long long)a.o.steps, l.loss, l.val_loss ? (" val " + std::to_string(*l.val_loss)).c_str() : "",
                   l.lr, double(l.grad_norm), rate);
    }
  };
  interrupt::install();
  const bool finished = tr->run(on_step, [] { return interrupt::pending(); });
  bar.end();
  if (!finished) {
    std::printf("interrupted at step %lld: %s\n", (long long)tr->steps_done(),
                a.out.empty() ? "nothing saved (no --out)" : ("checkpoint " + tr->last_checkpoint()).c_str());
    std::fflush(stdout);
    std::exit(130);
  }
  if (!a.out.empty() && train::Comm::world().is_root()) publish_final(tr->last_checkpoint(), a.out);
  std::printf("fine-tuned %lld steps in %.1f s; loss %.4f%s\n", (long long)tr->steps_done(), seconds, last.loss,
              a.out.empty() ? ""
                            : ("; " + std::string(lora ? "adapter" : "model") + " in " + a.out + " (" +
                               (lora ? "--lora " : "-m ") + a.out + "), checkpoint " + tr->last_checkpoint())
                                  .c_str());
}

const bool reg = add_command([](CLI::App& app) {
  auto a = std::make_shared<FinetuneArgs>();
  auto* sub = app.add_subcommand("finetune", "Supervised fine-tuning (full or LoRA/QLoRA) on chat or Alpaca JSONL");
  sub->add_option("-m,--model", a->model, "the model to fine-tune, or LoRA's frozen base (any format camelid loads)")->required();
  sub->add_option("--resume", a->resume, "continue a run from a checkpoint directory, or the newest one in an --out directory");
  sub->add_option("--tokenizer", a->tokenizer, "tokenizer directory or file (default the model's)");
  sub->add_option("--chat-template", a->chat_template, "a Jinja chat template file (default the model's)");
  // LoRA.
  sub->add_option("--lora-r", a->lora_r, "train a LoRA adapter of this rank over the frozen model (0: full fine-tuning)");
  sub->add_option("--lora-init", a->lora_init, "train this PEFT adapter directory further (its r, alpha, dropout, targets)");
  sub->add_option("--lora-alpha", a->lora_alpha, "LoRA alpha (scale alpha / r; default 2 x r)");
  sub->add_option("--lora-dropout", a->lora_dropout, "dropout on the adapter's input while training");
  sub->add_option("--lora-targets", a->lora_targets, "comma-separated modules among q,k,v,o,gate,up,down (default q,k,v,o)");
  // Data.
  sub->add_option("--data", a->data, "JSONL files: {\"messages\": [...]}, {\"instruction\", \"input\", \"output\"} or {\"input_ids\", \"labels\"}")->required();
  sub->add_option("--val-data", a->val_data, "held-out JSONL files");
  sub->add_option("--val-fraction", a->val_fraction, "hold out the last fraction of the examples");
  sub->add_option("--seq-len,-T", a->seq_len, "tokens per row: one example per row, longer ones truncated (default the longest example, at most the context)");
  sub->add_option("--batch,-b", a->o.batch, "rows (examples) per micro-batch");
  sub->add_option("--grad-accum", a->o.grad_accum, "micro-batches per optimizer step");
  sub->add_flag("--no-shuffle", a->no_shuffle, "step s row b uses example (s*B+b) mod n, B = batch x grad-accum");
  sub->add_option("--seed", a->o.seed, "seed of the data order, the adapter's initial A and its dropout");
  // Optimization.
  add_optimizer_options(sub, a->o, a->lr_schedule, "AdamW decoupled weight decay (matrices and adapters, never norms)");
  // Evaluation and output.
  sub->add_option("--eval-every", a->o.eval_every, "steps between validation passes (and at the end)");
  sub->add_option("--eval-batches", a->o.eval_batches, "micro-batches of held-out examples per validation pass");
  sub->add_option("-o,--out", a->out, "output: OUT/checkpoint-STEP/, OUT/loss.svg, and the final model/adapter in OUT itself");
  sub->add_option("--save-every", a->o.save_every, "steps between checkpoints (and at the end)");
  sub->add_option("--log-json", a->log_json, "one JSON line per step: step, loss, lr, grad_norm, tokens_per_s[, val_loss]");
  sub->add_flag("--progress", a->progress, "draw the progress bar even when stderr is not a terminal");
  sub->add_option("-t,--threads", a->threads, "threads (0: OpenMP's default)");
  sub->callback([a] {
    a->o.out_dir = a->out;
    run_on_every_rank(a->log_json, a->progress, a->quiet, [&] { run(*a); });
  });
});

}  // namespace
}  // namespace camelid::cli
