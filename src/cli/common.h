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

// Loads a model and applies the run flags (add_run_flags) given on the command line.
std::unique_ptr<Llama> load_llama(const std::string& path, bool no_mmap = false);
// Adds --no-mmap to a subcommand.
void add_no_mmap_flag(CLI::App* sub, bool& flag);

// How a model runs, on every command that runs one: --kv-type, --exact, --bf16-dot
// (kernels::set_bf16_dot; a note on stderr where the CPU lacks it).
void add_run_flags(CLI::App* sub);

// The directory of a model: the path itself, or the directory holding a model file ("." for a
// bare file name). Tokenizer and chat template files are looked for there.
std::string model_dir(const std::string& model_path);

// The tokenizer for a model: `override` if given, else the GGUF file's own (a model file is
// recognised by content), else the one in model_dir(model_path).
// Throws an Error that says how to point at one.
std::unique_ptr<Tokenizer> load_tokenizer_for(const std::string& model_path, const std::string& override_path);
void add_tokenizer_option(CLI::App* sub, std::string& path);

// The chat template for a model: a GGUF file's tokenizer.chat_template, else the model
// directory's tokenizer_config.json (either way the family's format when there is none).
// A template that cannot parse throws here, naming the file. `tok`: the model's tokenizer when
// the caller has it (a GGUF template takes its bos/eos texts from it; loaded here otherwise).
ChatTemplate load_chat_template_for(const std::string& model_path, const Tokenizer* tok = nullptr);

// --temp --top-k --top-p --min-p --repeat-penalty --seed, shared by generate and chat.
void add_sampling_options(CLI::App* sub, SamplingParams& sp);

// Token ids from a file: a JSON array, or integers separated by commas/whitespace.
std::vector<int> read_ids_file(const std::string& path);

// Prints a float the way JSON consumers want it: shortest text that reads back the same f32.
std::string json_float(double v);

}  // namespace camelid::cli
