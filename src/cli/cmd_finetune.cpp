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
#include <sstream>

#include "chat/chat_template.h"
#include "cli/commands.h"
#include "cli/lora_args.h"
#include "cli/common.h"
#include "cli/train_args.h"
#include "core/error.h"
#include "core/gguf.h"
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

struct FinetuneArgs : LoopArgs {
  std::string model, tokenizer, chat_template;
  LoraArgs lora;
};

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open");
  return {std::istreambuf_iterator<char>(f), {}};
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
  const bool lora = lora_mode(a.lora, ckpt);

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
    lt = load_lora_training(load_model(a.model), a.model, a.lora, ckpt, a.o.seed);
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
    print_lora_summary(lt);
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

  const RunTotals totals = run_and_report(a, *tr, !ckpt.empty());
  if (!a.out.empty() && train::Comm::world().is_root()) publish_final(tr->last_checkpoint(), a.out);
  std::printf("fine-tuned %lld steps in %.1f s; loss %.4f%s\n", (long long)tr->steps_done(), totals.seconds, totals.last.loss,
              a.out.empty() ? ""
                            : ("; " + std::string(lora ? "adapter" : "model") + " in " + a.out + " (" +
                               (lora ? "--lora " : "-m ") + a.out + "), checkpoint " + tr->last_checkpoint())
                                  .c_str());
}

const bool reg_finetune = add_command([](CLI::App& app) {
  auto a = std::make_shared<FinetuneArgs>();
  auto* sub = app.add_subcommand("finetune", "Supervised fine-tuning (full or LoRA/QLoRA) on chat or Alpaca JSONL");
  sub->add_option("-m,--model", a->model, "the model to fine-tune, or LoRA's frozen base (any format camelid loads)")->required();
  sub->add_option("--resume", a->resume, "continue a run from a checkpoint directory, or the newest one in an --out directory");
  sub->add_option("--tokenizer", a->tokenizer, "tokenizer directory or file (default the model's)");
  sub->add_option("--chat-template", a->chat_template, "a Jinja chat template file (default the model's)");
  // LoRA.
  add_lora_options(sub, a->lora);
  // Data.
  sub->add_option("--data", a->data, "JSONL files: {\"messages\": [...]}, {\"instruction\", \"input\", \"output\"} or {\"input_ids\", \"labels\"}")->required();
  add_loop_options(sub, *a,
                   {"held-out JSONL files", "hold out the last fraction of the examples",
                    "tokens per row: one example per row, longer ones truncated (default the longest example, at most "
                    "the context)",
                    "rows (examples) per micro-batch", "step s row b uses example (s*B+b) mod n, B = batch x grad-accum",
                    "seed of the data order, the adapter's initial A and its dropout",
                    "AdamW decoupled weight decay (matrices and adapters, never norms)",
                    "micro-batches of held-out examples per validation pass",
                    "output: OUT/checkpoint-STEP/, OUT/loss.svg, and the final model/adapter in OUT itself"});
  sub->callback([a] { run_loop_command(*a, [&] { run(*a); }); });
});

}  // namespace
}  // namespace camelid::cli
