// `camelid merge BASE ADAPTER -o OUT`: folds a LoRA adapter (PEFT layout) into its base model and
// writes the result as a Hugging Face directory, so the fine-tune runs anywhere without PEFT.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/gguf.h"
#include "model/lora_io.h"
#include "model/lora_merge.h"

namespace camelid::cli {
namespace {

namespace fs = std::filesystem;

struct MergeArgs {
  std::string base, adapter, out, dtype = "f32";
  float scale = 1.f;
};

// Files a Hugging Face directory carries besides the weights, copied as they are.
constexpr const char* kSideFiles[] = {"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                                      "special_tokens_map.json", "generation_config.json", "chat_template.jinja"};

void run(const MergeArgs& a) {
  const DType dtype = a.dtype == "f16" ? DType::F16 : a.dtype == "bf16" ? DType::BF16 : DType::F32;
  std::error_code ec;
  if (fs::exists(a.out + "/model.safetensors", ec) || fs::exists(a.out + "/config.json", ec))
    fail(a.out, ": already holds a model (choose a new directory)");
  std::unique_ptr<ModelWeights> base;
  {
    LoadingIndicator progress(a.base);
    base = load_model(a.base);
  }
  const std::shared_ptr<LoraAdapter> adapter = a.adapter.empty() ? nullptr : load_lora(a.adapter, base->config);
  const ParamSet merged = merge_lora(*base, adapter.get(), a.scale);
  write_hf_checkpoint(a.out, merged, dtype);
  int copied = 0;
  if (!gguf::File::sniff(a.base) && fs::is_directory(a.base, ec)) {
    for (const char* f : kSideFiles) {
      const fs::path from = fs::path(a.base) / f;
      if (!fs::exists(from, ec)) continue;
      fs::copy_file(from, fs::path(a.out) / f, fs::copy_options::overwrite_existing, ec);
      if (ec) fail(from.string(), ": cannot copy to ", a.out, ": ", ec.message());
      ++copied;
    }
  } else {
    std::fprintf(stderr, "note: %s is not a Hugging Face directory: no tokenizer files were written (give later "
                 "commands --tokenizer, or copy them into %s)\n", a.base.c_str(), a.out.c_str());
  }
  char what[128] = "no adapter";
  if (adapter)
    std::snprintf(what, sizeof what, "adapter r=%d alpha=%g on %zu modules x scale %g", adapter->config.r,
                  adapter->config.alpha, adapter->params.params.size() / 2, double(a.scale));
  std::printf("wrote %s: %zu tensors, %s, %s%s, %d tokenizer/config files copied\n", a.out.c_str(),
              merged.params.size(), dtype_name(dtype), what, is_quantized(base->main_dtype()) ? " (base dequantized)" : "",
              copied);
}

const bool reg_merge = add_command([](CLI::App& app) {
  auto a = std::make_shared<MergeArgs>();
  auto* sub = app.add_subcommand(
      "merge",
      "Fold a LoRA adapter into its base model: a Hugging Face directory (config.json, model.safetensors, "
      "tokenizer files copied from a directory base). A quantized GGUF base is dequantized: the merged weights "
      "are f32 (or --dtype), so the output is larger than the base; quantize it again with `camelid quantize`");
  sub->add_option("base", a->base, "base model (Hugging Face directory, GGUF file or llama2.c checkpoint)")->required();
  sub->add_option("adapter", a->adapter,
                  "PEFT adapter directory (adapter_config.json + adapter_model.safetensors); without one, the base "
                  "alone is written (e.g. an f32 training checkpoint as f16)");
  sub->add_option("-o,--out", a->out, "output directory")->required();
  sub->add_option("--dtype", a->dtype, "weight type of model.safetensors: f32, f16 or bf16")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
  sub->add_option("--lora-scale", a->scale, "multiplies the adapter's lora_alpha / r")->capture_default_str();
  sub->callback([a] { run(*a); });
});

}  // namespace
}  // namespace camelid::cli
