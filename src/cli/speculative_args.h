#pragma once
// --draft MODEL / --lookup / --draft-max N: speculative decoding for the generating commands.
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "runtime/speculative.h"

namespace camelid::cli {

struct SpeculativeArgs {
  std::string draft;  // draft model path (same vocabulary as the model)
  bool lookup = false;
  int draft_max = 8;
  bool enabled() const { return lookup || !draft.empty(); }
};

void add_speculative_options(CLI::App* sub, SpeculativeArgs& a);

// Checks the flags against the run (no grammar; the draft's vocabulary is the model's) and loads
// the --draft model (null without one). Called before any output, so errors are one clean line.
std::unique_ptr<Llama> load_draft(const SpeculativeArgs& a, const Llama& model, bool constrained, bool no_mmap);

// Runs generate(), or generate_speculative() when --draft/--lookup was given; then prints
// drafted/accepted/acceptance rate and tokens/s on stderr. `json` (when given) gets a
// "speculative": {steps, drafted, accepted} object.
GenerateResult generate_with(const SpeculativeArgs& a, Llama* draft, Session& s, const std::vector<int>& prompt,
                             const GenerateOptions& opt, const std::function<bool(int)>& on_token,
                             nlohmann::json* json = nullptr);

}  // namespace camelid::cli
