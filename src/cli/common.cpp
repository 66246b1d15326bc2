#include "cli/common.h"

#include <omp.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/gguf.h"
#include "core/mmap_file.h"
#include "kernels/kernels.h"
#include "model/lora_io.h"

namespace camelid::cli {

namespace {
struct RunFlags {
  std::string kv_type = "f32";
  bool exact = false;
  std::string lora;
  float lora_scale = 1.f;
};
RunFlags& run_flags() {
  static RunFlags f;
  return f;
}
}  // namespace

namespace {
std::unique_ptr<Llama> load_llama_here(const std::string& path, bool no_mmap, bool with_adapter) {
  const DType kv = dtype_from_name(run_flags().kv_type);
  std::shared_ptr<ModelWeights> w;
  {
    LoadingIndicator progress(path);
    w = load_model(path, no_mmap);
    // Quantized matrices in the decode kernels' panels (same results); --exact reads rows, and
    // CAMELID_INTERLEAVE=0 keeps them row-major (for comparisons).
    const char* env = std::getenv("CAMELID_INTERLEAVE");
    if (!kernels::exact() && !(env && std::string(env) == "0")) w->interleave_for_decode();
  }
  if (with_adapter && !run_flags().lora.empty()) {
    w->lora = load_lora(run_flags().lora, w->config);
    w->lora_scale = run_flags().lora_scale;
  }
  auto m = std::make_unique<Llama>(std::move(w));
  m->set_kv_type(kv);
  KVCache probe(m->config(), 1, 1, kv);  // a type the model's heads cannot hold fails here, by name
  return m;
}
}  // namespace

// Loading runs OpenMP regions (the weights' checks), and OpenMP's worker threads live as long as
// the thread that started them: loading runs on a thread of its own so that they end with it.
// When serving, the engine's thread runs the forward passes with workers of its own; with the
// loader's idle ones still there, libgomp counts more threads than cores and stops spinning between
// parallel regions (measured serving one stream: 95 context switches per token, 13% fewer tokens/s).
std::unique_ptr<Llama> load_llama(const std::string& path, bool no_mmap, bool with_adapter) {
  const int threads = omp_get_max_threads();  // --threads is set on this thread only
  std::unique_ptr<Llama> m;
  std::exception_ptr err;
  std::thread([&] {
    omp_set_num_threads(threads);
    try {
      m = load_llama_here(path, no_mmap, with_adapter);
    } catch (...) {
      err = std::current_exception();
    }
  }).join();
  if (err) std::rethrow_exception(err);
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
      "f32 activations against exactly dequantized weights (conformance), not the fast path's 8-bit integer dot "
      "products for quantized weights and bf16 activations for bf16 weights");
  sub->add_option("--lora", run_flags().lora,
                  "a LoRA adapter directory in Hugging Face PEFT's layout (adapter_config.json + "
                  "adapter_model.safetensors) applied on top of the model (any format, quantized included)");
  sub->add_option("--lora-scale", run_flags().lora_scale, "multiplies the adapter's lora_alpha / r")
      ->check(CLI::Range(-1000.0, 1000.0));
  sub->add_flag_callback(
      "--bf16-dot",
      [] {
        if (!kernels::set_bf16_dot(true))
          std::fprintf(stderr, "note: --bf16-dot needs the AVX-512 kernels on a CPU with AVX512-BF16: bf16 weights are widened to f32\n");
      },
      "bf16 weights: multiply by activations rounded to bf16 (AVX512-BF16), as llama.cpp does: about 1.3x the "
      "prefill speed, logits within ~0.1 of f32. The default where the CPU has it");
  sub->add_flag_callback(
      "--no-bf16-dot", [] { kernels::set_bf16_dot(false); },
      "bf16 weights: widen to f32 and multiply by f32 activations (same as CAMELID_BF16_DOT=0)");
}

std::string default_model_path() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("CAMELID_MODEL"); env && *env) return env;
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe = fs::canonical("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path().parent_path() / "models" / "camelid-brown");
    candidates.push_back(exe.parent_path() / "models" / "camelid-brown");
  }
#ifdef CAMELID_SOURCE_MODELS
  candidates.push_back(fs::path(CAMELID_SOURCE_MODELS) / "camelid-brown");
#endif
  std::string looked;
  for (const fs::path& c : candidates) {
    if (fs::exists(c / "config.json", ec)) return c.string();
    const std::string shown = c.lexically_normal().string();
    if (looked.find(shown) == std::string::npos) looked += (looked.empty() ? "" : ", ") + shown;
  }
  fail("no -m MODEL given and no default model found (looked in ", looked, "; or set CAMELID_MODEL)");
}

std::string model_or_default(const std::string& path) { return path.empty() ? default_model_path() : path; }

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

ChatTemplate load_chat_template_for(const std::string& model_path, const Tokenizer* tok, bool require_template) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(model_path, ec)) fail(model_path, ": no such file or directory");
  const bool is_gguf = gguf::File::sniff(model_path);
  auto load = [&] {
    if (!is_gguf) return ChatTemplate::from_model_dir(model_dir(model_path));
    auto f = gguf::File::open(model_path);
    std::unique_ptr<Tokenizer> own;
    if (!tok) tok = (own = Tokenizer::load(model_path)).get();
    return ChatTemplate::from_gguf(*f, *tok);
  };
  ChatTemplate t = load();
  if (t.is_fallback()) {
    const std::string where = is_gguf ? model_path + ": no chat template (no tokenizer.chat_template in the file)"
                                      : model_dir(model_path) + ": no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja)";
    if (require_template) fail(where);
    std::fprintf(stderr, "note: %s; using the family's standard chat format\n", where.c_str());
  }
  return t;
}

void add_tokenizer_option(CLI::App* sub, std::string& path) {
  sub->add_option("--tokenizer", path, "tokenizer.json / tokenizer.model / directory (default: the model's directory)");
}

void add_sampling_options(CLI::App* sub, SamplingParams& sp) {
  const std::string gc = " (default: generation_config.json's, else this)";
  sub->add_option("--temp", sp.temperature, "temperature (0 = greedy)" + gc);
  sub->add_option("--top-k", sp.top_k, "top-k (0 = off)" + gc);
  sub->add_option("--top-p", sp.top_p, "top-p (1 = off)" + gc);
  sub->add_option("--min-p", sp.min_p, "min-p (0 = off)");
  sub->add_option("--repeat-penalty", sp.repeat_penalty, "repetition penalty (1 = off)" + gc);
  sub->add_option("-s,--seed", sp.seed, "random seed (default: a random one, printed on stderr)")->default_str("random");
}

std::string apply_generation_config(const CLI::App& sub, const std::string& model_path, SamplingParams& sp) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (gguf::File::sniff(model_path)) return "";
  const std::string path = (fs::path(model_dir(model_path)) / "generation_config.json").string();
  if (!fs::is_regular_file(path, ec)) return "";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path, 1 << 20));
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
  if (!j.is_object()) fail(path, ": expected a JSON object");
  std::string applied;
  auto note = [&](const std::string& s) { applied += (applied.empty() ? "" : ", ") + s; };
  // A field applies when present, a number in range, and the matching flag was not given.
  auto number = [&](const char* key, const char* flag, double lo, double hi, auto apply) {
    if (!j.contains(key) || j[key].is_null() || sub.count(flag) > 0) return;
    if (!j[key].is_number()) fail(path, ": ", key, ": expected a number");
    const double v = j[key].get<double>();
    if (!(v >= lo && v <= hi)) fail(path, ": ", key, ": ", v, " is out of range [", lo, ", ", hi, "]");
    apply(v);
    note(std::string(key) + " " + json_float(v));
  };
  number("temperature", "--temp", 0, 100, [&](double v) { sp.temperature = float(v); });
  number("top_p", "--top-p", 0, 1, [&](double v) { sp.top_p = float(v); });
  number("top_k", "--top-k", 0, 1 << 30, [&](double v) { sp.top_k = int(v); });
  number("repetition_penalty", "--repeat-penalty", 1e-3, 100, [&](double v) { sp.repeat_penalty = float(v); });
  // transformers samples only with do_sample true; an explicit false means greedy decoding.
  if (j.contains("do_sample") && j["do_sample"].is_boolean() && !j["do_sample"].get<bool>() && sub.count("--temp") == 0) {
    sp.temperature = 0;
    note("do_sample false (greedy)");
  }
  return applied;
}

void resolve_sampling(const CLI::App& sub, const std::string& model_path, SamplingParams& sp, bool quiet) {
  const std::string applied = apply_generation_config(sub, model_path, sp);
  sp.validate();  // before any note: a bad flag is one error line
  if (!applied.empty() && !quiet) std::fprintf(stderr, "sampling from generation_config.json: %s\n", applied.c_str());
  if (sub.count("--seed") == 0) {
    std::random_device rd;
    sp.seed = (uint64_t(rd()) << 32 | rd()) & ((uint64_t(1) << 53) - 1);  // exact in JSON and doubles
    if (!quiet && sp.temperature > 0) std::fprintf(stderr, "seed: %llu (repeat with --seed)\n", (unsigned long long)sp.seed);
  }
}

void add_threads_option(CLI::App* sub, int& threads) {
  sub->add_option("-t,--threads", threads, "threads (0 = all cores)");
}

void add_ctx_option(CLI::App* sub, int& ctx, const std::string& help) {
  sub->add_option("-c,--ctx", ctx, help);
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

void EvalStats::print() const {
  auto line = [](const char* what, long long n, double ms) {
    std::fprintf(stderr, "%s: %lld tokens, %.2f ms, %.2f tok/s\n", what, n, ms, ms > 0 ? n * 1000.0 / ms : 0.0);
  };
  line("prompt eval", prompt_tokens, prompt_ms);
  line("eval", gen_tokens, gen_ms);
}

std::string json_float(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace camelid::cli
