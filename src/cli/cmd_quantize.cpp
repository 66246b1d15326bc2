// `camelid quantize`: a model (Hugging Face directory or GGUF file, float or already quantized)
// to a quantized GGUF file with llama-quantize's per-tensor mixture for the chosen type (what
// llama-quantize --allow-requantize writes: quantized input is dequantized, then requantized).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/gguf.h"
#include "model/gguf_export.h"
#include "tokenizer/tokenizer_to_gguf.h"

namespace camelid::cli {
namespace {

struct QuantizeArgs {
  std::string in, out, type;
  int threads = 0;
  bool progress = false;
};

ExportModel load_input(const std::string& in) {
  std::error_code ec;
  if (std::filesystem::is_directory(in, ec)) {
    return export_hf_model(in, DType::Count, [in](int64_t vocab_size) -> gguf::KeyValues {
      if (has_tokenizer_files(in)) return tokenizer_gguf_metadata(in, vocab_size);
      std::fprintf(stderr, "warning: %s has no tokenizer.model or tokenizer.json: the GGUF file will have no tokenizer\n", in.c_str());
      return {};
    });
  }
  if (gguf::File::sniff(in)) return export_gguf_model(in);
  if (!std::filesystem::exists(in, ec)) fail(in, ": no such file or directory");
  fail(in, ": not a model (expected a Hugging Face model directory or a GGUF file)");
}

void run(const QuantizeArgs& a) {
  const QuantType& q = quant_type_from_name(a.type);  // before any work: a typo fails at once
  set_threads(a.threads);
  std::error_code ec;
  if (!std::filesystem::exists(a.in, ec)) fail(a.in, ": no such file or directory");
  gguf::check_writable(a.out);
  const auto t0 = std::chrono::steady_clock::now();
  ExportModel m = load_input(a.in);
  prepare_for_quantize(m, q);
  const std::vector<DType> types = quantize_recipe(m, q);
  uint64_t in_bytes = 0, out_bytes = 0;
  std::map<std::string, int> counts;
  for (size_t i = 0; i < types.size(); ++i) {
    in_bytes += m.tensors[i].rows() * row_bytes(m.tensors[i].dtype, m.tensors[i].ne[0]);
    out_bytes += m.tensors[i].rows() * row_bytes(types[i], m.tensors[i].ne[0]);
    ++counts[dtype_name(types[i])];
  }
  {
    ProgressBar bar(a.progress);
    write_gguf(m, types, a.out, bar.callback());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string mix;
  for (auto& [name, n] : counts) mix += (mix.empty() ? "" : ", ") + std::to_string(n) + " " + name;
  std::printf("wrote %s: %s (file type %u), %zu tensors (%s), %.1f MB -> %.1f MB in %.1f s (%.1f MB/s of input)\n",
              a.out.c_str(), q.name, unsigned(q.ftype), types.size(), mix.c_str(), in_bytes / 1e6, out_bytes / 1e6, secs,
              secs > 0 ? in_bytes / 1e6 / secs : 0.0);
}

const bool reg_quantize = add_command([](CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  auto* sub = app.add_subcommand("quantize", "Quantize a model to GGUF with llama-quantize's per-tensor mixtures");
  sub->add_option("in", a->in, "Hugging Face model directory or GGUF file (float or quantized)")->required();
  sub->add_option("out", a->out, "output .gguf file")->required();
  sub->add_option("type", a->type, "Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS")
      ->required();
  sub->add_option("-t,--threads", a->threads, "threads (default: all cores)");
  sub->add_flag("--progress", a->progress, "progress bar on stderr even when it is not a terminal");
  sub->callback([a] { run(*a); });
});

}  // namespace
}  // namespace camelid::cli
