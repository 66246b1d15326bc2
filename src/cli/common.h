#pragma once
// Helpers shared by the model subcommands.
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "model/llama.h"
#include "chat/chat_template.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

namespace camelid::cli {

// Loads a model and applies the run flags (add_run_flags) given on the command line, the LoRA
// adapter of --lora included unless `with_adapter` is false (a draft model).
std::unique_ptr<Llama> load_llama(const std::string& path, bool no_mmap = false, bool with_adapter = true);
// Adds --no-mmap to a subcommand.
void add_no_mmap_flag(CLI::App* sub, bool& flag);

// How a model runs, on every command that runs one: --kv-type, --exact, --bf16-dot
// (kernels::set_bf16_dot; a note on stderr where the CPU lacks it), --lora ADAPTER_DIR and
// --lora-scale S (a PEFT adapter applied by every linear layer: model/lora.h).
void add_run_flags(CLI::App* sub);

// The model `generate` and `chat` run without -m: $CAMELID_MODEL if set, else the small English
// model trained by camelid that ships in the repository (models/camelid-brown: see its README),
// looked for beside the binary (../models, ./models) and in the source tree it was built from.
// Throws Error listing where it looked when there is none.
std::string default_model_path();
// `path` itself, or default_model_path() when it is empty (no -m given).
std::string model_or_default(const std::string& path);

// The directory of a model: the path itself, or the directory holding a model file ("." for a
// bare file name). Tokenizer and chat template files are looked for there.
std::string model_dir(const std::string& model_path);

// The tokenizer for a model: `override` if given, else the GGUF file's own (a model file is
// recognised by content), else the one in model_dir(model_path).
// Throws an Error that says how to point at one.
std::unique_ptr<Tokenizer> load_tokenizer_for(const std::string& model_path, const std::string& override_path);
void add_tokenizer_option(CLI::App* sub, std::string& path);

// The chat template for a model: a GGUF file's tokenizer.chat_template, else the model
// directory's tokenizer_config.json or chat_template.jinja. A template that cannot parse throws
// here, naming the file. `tok`: the model's tokenizer when the caller has it (a GGUF template
// takes its bos/eos texts from it; loaded here otherwise). A path that does not exist is an
// Error. Without a template: with `require_template` an Error naming the path (what `template`
// wants: it shows the model's own template, never a stand-in); otherwise the family's standard
// format (what chat and serve need to run at all) and a note on stderr saying so.
ChatTemplate load_chat_template_for(const std::string& model_path, const Tokenizer* tok = nullptr,
                                    bool require_template = false);

// --temp --top-k --top-p --min-p --repeat-penalty -s/--seed, shared by generate and chat.
void add_sampling_options(CLI::App* sub, SamplingParams& sp);
// After parsing: for each sampling flag the user did not give, the model directory's
// generation_config.json value (temperature, top_p, top_k, repetition_penalty; do_sample false
// = greedy); without --seed, a random seed. Says on stderr what it took, and the seed, so a run
// can be reproduced. Throws Error naming the file and field for a value out of range.
void resolve_sampling(const CLI::App& sub, const std::string& model_path, SamplingParams& sp, bool quiet = false);
// The generation_config.json part alone (returns what it applied, e.g. "temperature 0.6").
std::string apply_generation_config(const CLI::App& sub, const std::string& model_path, SamplingParams& sp);

// -t/--threads and -c/--ctx with the same names and help everywhere.
void add_threads_option(CLI::App* sub, int& threads);
void add_ctx_option(CLI::App* sub, int& ctx, const std::string& help = "context size");

// Prompt processing and generation timings, printed on stderr after generate and chat as
// llama.cpp does: "prompt eval: N tokens, X ms, Y tok/s" and "eval: N tokens, X ms, Y tok/s"
// (eval counts decode steps: each generated token fed back to the model).
struct EvalStats {
  long long prompt_tokens = 0, gen_tokens = 0;
  double prompt_ms = 0, gen_ms = 0;
  void print() const;
};

// Token ids from a file: a JSON array, or integers separated by commas/whitespace.
std::vector<int> read_ids_file(const std::string& path);

// Prints a float the way JSON consumers want it: shortest text that reads back the same f32.
std::string json_float(double v);

}  // namespace camelid::cli
