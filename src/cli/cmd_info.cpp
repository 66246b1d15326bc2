// `camelid info`: what a model is (config, format, dtype, sizes) without running it.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "kernels/kernels.h"
#include "model/weights.h"

namespace camelid::cli {
namespace {

const bool reg = add_command([](CLI::App& app) {
  auto model = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto* sub = app.add_subcommand("info", "Show a model's configuration and weights");
  sub->add_option("-m,--model", *model, "model directory or file")->required();
  sub->add_flag("--json", *json, "JSON output");
  sub->callback([model, json] {
    auto w = load_model(*model);
    size_t params = 0;
    for (auto& l : w->layers)
      for (const Tensor* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down})
        params += size_t(t->numel());
    params += size_t(w->embed.numel() + w->final_norm.numel());
    if (w->lm_head.data != w->embed.data) params += size_t(w->lm_head.numel());
    nlohmann::json j = {{"path", *model}, {"format", w->format}, {"dtype", dtype_name(w->main_dtype())},
                        {"parameters", params}, {"weight_bytes", w->weight_bytes()},
                        {"config", w->config.to_json()},
                        {"cpu_isa", kernels::isa_name(kernels::active_isa())},
                        {"bf16_dot_supported", kernels::bf16_dot_supported()}};
    if (*json) {
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%s: %s, %s, %.1fM parameters, %.1f MB of weights (kernels: %s)\n%s\n", model->c_str(),
                  w->format.c_str(), dtype_name(w->main_dtype()), params / 1e6, w->weight_bytes() / 1e6,
                  kernels::isa_name(kernels::active_isa()), w->config.to_json().dump(2).c_str());
    }
  });
});

}  // namespace
}  // namespace camelid::cli
