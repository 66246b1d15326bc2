// `camelid info`: what a model is (config, format, types, sizes) without running it. For a GGUF
// file also its metadata (arrays shortened; the vocabulary and merges are summarized).
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/gguf.h"
#include "kernels/kernels.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace camelid::cli {
namespace {

// Tensors, elements and bytes per storage type.
nlohmann::json types_of(const ModelWeights& w) {
  struct Count {
    size_t tensors = 0, elements = 0, bytes = 0;
  };
  std::map<std::string, Count> by;
  w.visit([&](const Tensor& t) {
    Count& c = by[dtype_name(t.dtype)];
    ++c.tensors, c.elements += size_t(t.numel()), c.bytes += t.nbytes();
  });
  nlohmann::json j = nlohmann::json::object();
  for (auto& [name, c] : by) j[name] = {{"tensors", c.tensors}, {"parameters", c.elements}, {"bytes", c.bytes}};
  return j;
}

nlohmann::json gguf_metadata(const std::string& path) {
  auto f = gguf::File::open(path);
  nlohmann::json j = nlohmann::json::object();
  for (auto& [k, v] : f->metadata()) j[k] = gguf::value_summary(v);
  return {{"version", f->version()}, {"alignment", f->alignment()}, {"tensor_count", f->tensors().size()}, {"metadata", j}};
}

const bool reg_info = add_command([](CLI::App& app) {
  auto model = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto* sub = app.add_subcommand("info", "Show a model's configuration, weights and (GGUF) metadata");
  sub->add_option("-m,--model", *model, "model directory or file")->required();
  sub->add_flag("--json", *json, "JSON output");
  sub->callback([model, json] {
    auto w = load_model(*model);
    const size_t params = w->parameters();
    nlohmann::json j = {{"path", *model}, {"format", w->format}, {"dtype", dtype_name(w->main_dtype())},
                        {"types", types_of(*w)}, {"parameters", params}, {"weight_bytes", w->weight_bytes()},
                        {"config", w->config.to_json()},
                        {"cpu_isa", kernels::isa_name(kernels::active_isa())},
                        {"bf16_dot_supported", kernels::bf16_dot_supported()}};
    nlohmann::json kv = nlohmann::json::object();
    for (DType t : {DType::F32, DType::F16, DType::Q8_0})
      kv[dtype_name(t)] = row_fits(t, w->config.head_dim) ? nlohmann::json(KVCache::bytes_per_token(w->config, t)) : nlohmann::json();
    j["kv_bytes_per_token"] = kv;
    if (w->format == "gguf") j["gguf"] = gguf_metadata(*model);
    if (*json) {
      std::printf("%s\n", j.dump().c_str());
      return;
    }
    std::printf("%s: %s, %s, %.1fM parameters, %.1f MB of weights (kernels: %s)\n", model->c_str(), w->format.c_str(),
                dtype_name(w->main_dtype()), params / 1e6, w->weight_bytes() / 1e6, kernels::isa_name(kernels::active_isa()));
    for (auto& [name, c] : j["types"].items())
      std::printf("  %-7s %4zu tensors %10.2fM parameters %9.2f MB\n", name.c_str(), c["tensors"].get<size_t>(),
                  c["parameters"].get<size_t>() / 1e6, c["bytes"].get<size_t>() / 1e6);
    std::printf("KV cache bytes per token:");
    for (auto& [name, b] : kv.items()) std::printf(" %s %s", name.c_str(), b.is_null() ? "-" : std::to_string(b.get<size_t>()).c_str());
    std::printf("\n%s\n", w->config.to_json().dump(2).c_str());
    if (j.contains("gguf")) {
      const auto& g = j["gguf"];
      std::printf("GGUF v%d, alignment %zu, %zu tensors, metadata:\n", g["version"].get<int>(), g["alignment"].get<size_t>(),
                  g["tensor_count"].get<size_t>());
      for (auto& [k, v] : g["metadata"].items()) std::printf("  %s = %s\n", k.c_str(), v.get<std::string>().c_str());
    }
  });
});

}  // namespace
}  // namespace camelid::cli
