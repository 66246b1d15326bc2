#include "cli/common.h"

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/gguf.h"
#include "core/mmap_file.h"
#include "kernels/kernels.h"

namespace camelid::cli {

namespace {
struct RunFlags {
  std::string kv_type = "f32";
  bool exact = false;
};
RunFlags& run_flags() {
  static RunFlags f;
  return f;
}
}  // namespace

std::unique_ptr<Llama> load_llama(const std::string& path, bool no_mmap) {
  const DType kv = dtype_from_name(run_flags().kv_type);
  auto m = std::make_unique<Llama>(std::shared_ptr<const ModelWeights>(load_model(path, no_mmap)));
  m->set_kv_type(kv);
  KVCache probe(m->config(), 1, 1, kv);  // a type the model's heads cannot hold fails here, by name
  return m;
}

void add_no_mmap_flag(CLI::App* sub, bool& flag) {
  sub->add_flag("--no-mmap", flag,
                "read the weights into memory instead of mapping the files (same size; faster decode on some machines)");
}

void add_run_flags(CLI::App* sub) {
  sub->add_option("--kv-type", run_flags().kv_type, "KV cache type: f32, f16 or q8_0 (bytes per token: info --json)")
      ->check(CLI::IsMember({"f32", "f16", "q8_0"}));
  sub->add_flag_callback(
      "--exact",
      [] {
        run_flags().exact = true;
        kernels::set_exact(true);
      },
      "quantized weights: f32 activations against exactly dequantized weights (conformance), not the 8-bit integer "
      "dot products of the fast path; also turns --bf16-dot off");
  sub->add_flag_callback(
      "--bf16-dot",
      [] {
        if (!kernels::set_bf16_dot(true))
          std::fprintf(stderr, "note: --bf16-dot needs the AVX-512 kernels on a CPU with AVX512-BF16: bf16 weights are widened to f32\n");
      },
      "bf16 weights: multiply by activations rounded to bf16 (AVX512-BF16): about 1.6x the batched and "
      "prefill speed, logits within ~0.1 of f32; same as CAMELID_BF16_DOT=1");
}

std::string model_dir(const std::string& model_path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(model_path)) return model_path;
  const std::string dir = fs::path(model_path).parent_path().string();
  return dir.empty() ? "." : dir;
}

std::unique_ptr<Tokenizer> load_tokenizer_for(const std::string& model_path, const std::string& override_path) {
  if (!override_path.empty()) return Tokenizer::load(override_path);
  if (gguf::File::sniff(model_path)) return Tokenizer::load(model_path);
  const std::string dir = model_dir(model_path);
  if (!Tokenizer::available(dir))
    fail(model_path, ": no tokenizer.json or tokenizer.model next to the model (use --tokenizer PATH, or token ids)");
  return Tokenizer::load(dir);
}

ChatTemplate load_chat_template_for(const std::string& model_path, const Tokenizer* tok) {
  if (!gguf::File::sniff(model_path)) return ChatTemplate::from_model_dir(model_dir(model_path));
  auto f = gguf::File::open(model_path);
  std::unique_ptr<Tokenizer> own;
  if (!tok) tok = (own = Tokenizer::load(model_path)).get();
  return ChatTemplate::from_gguf(*f, *tok);
}

void add_tokenizer_option(CLI::App* sub, std::string& path) {
  sub->add_option("--tokenizer", path, "tokenizer.json / tokenizer.model / directory (default: the model's directory)");
}

void add_sampling_options(CLI::App* sub, SamplingParams& sp) {
  sub->add_option("--temp", sp.temperature, "temperature (0 = greedy)");
  sub->add_option("--top-k", sp.top_k, "top-k (0 = off)");
  sub->add_option("--top-p", sp.top_p, "top-p (1 = off)");
  sub->add_option("--min-p", sp.min_p, "min-p (0 = off)");
  sub->add_option("--repeat-penalty", sp.repeat_penalty, "repetition penalty (1 = off)");
  sub->add_option("--seed", sp.seed, "random seed");
}

std::vector<int> read_ids_file(const std::string& path) {
  std::string text = read_text_file(path);
  size_t i = text.find_first_not_of(" \t\r\n");
  if (i != std::string::npos && text[i] == '[') {
    try {
      return nlohmann::json::parse(text).get<std::vector<int>>();
    } catch (const nlohmann::json::exception& e) {
      fail(path, ": expected a JSON array of token ids: ", e.what());
    }
  }
  for (char& ch : text)
    if (std::isspace(static_cast<unsigned char>(ch))) ch = ',';
  std::string csv;
  for (size_t k = 0; k < text.size(); ++k)  // collapse runs of separators
    if (text[k] != ',' || (!csv.empty() && csv.back() != ',')) csv += text[k];
  while (!csv.empty() && csv.back() == ',') csv.pop_back();
  try {
    return parse_ids(csv);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
}

std::string json_float(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace camelid::cli
