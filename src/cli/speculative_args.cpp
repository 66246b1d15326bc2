#include "cli/speculative_args.h"

#include <chrono>
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"

namespace camelid::cli {

void add_speculative_options(CLI::App* sub, SpeculativeArgs& a) {
  auto* d = sub->add_option("--draft", a.draft, "draft model (same vocabulary) for speculative decoding");
  sub->add_flag("--lookup", a.lookup, "speculative decoding with drafts looked up in the prompt/output")->excludes(d);
  sub->add_option("--draft-max", a.draft_max,
                  "most tokens drafted per speculative step (a sequence guesses further while its guesses are "
                  "kept, less far after a rejection)")
      ->check(CLI::Range(1, 64));
}

std::unique_ptr<Llama> load_draft(const SpeculativeArgs& a, const Llama& model, bool constrained, bool no_mmap) {
  if (!a.enabled()) return nullptr;
  if (constrained) fail("--draft/--lookup cannot be combined with --grammar-file or --json-schema");
  if (a.draft.empty()) return nullptr;
  auto draft = load_llama(a.draft, no_mmap, /*with_adapter=*/false);
  if (draft->config().vocab_size != model.config().vocab_size)
    fail("--draft ", a.draft, ": the draft model's vocabulary has ", draft->config().vocab_size,
         " tokens but the model's has ", model.config().vocab_size, " (they must share one vocabulary)");
  return draft;
}

GenerateResult generate_with(const SpeculativeArgs& a, Llama* draft, Session& s, const std::vector<int>& prompt,
                             const GenerateOptions& opt, const std::function<bool(int)>& on_token,
                             nlohmann::json* json) {
  if (!a.enabled()) return generate(s, prompt, opt, on_token);
  SpeculativeOptions so;
  so.max_draft = a.draft_max;
  so.draft_model = draft;
  SpeculativeStats st;
  const auto t0 = std::chrono::steady_clock::now();
  GenerateResult r = generate_speculative(s, prompt, opt, so, &st, on_token);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "\n[speculative (%s): %ld steps, %ld drafted, %ld accepted (%.1f%%), %.2f tokens/s]\n",
               draft ? "draft model" : "prompt lookup", st.steps, st.drafted, st.accepted,
               st.drafted ? 100.0 * double(st.accepted) / double(st.drafted) : 0.0,
               secs > 0 ? double(r.ids.size()) / secs : 0.0);
  if (json) (*json)["speculative"] = {{"steps", st.steps}, {"drafted", st.drafted}, {"accepted", st.accepted}};
  return r;
}

}  // namespace camelid::cli
