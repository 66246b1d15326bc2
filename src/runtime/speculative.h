#pragma once
// Speculative decoding: a cheap guess of the next few tokens (a small draft model with the same
// vocabulary, or prompt lookup: the tokens that followed the last n-gram where it occurred
// before), checked by ONE forward pass of the model over all of them. Standard speculative
// sampling (Leviathan et al., Chen et al. 2023) keeps the output's law exactly: a guess is kept
// with probability min(1, p/q), a rejection draws from the normalised max(0, p - q), and when all
// are kept one more token comes from the model's own last distribution. Greedy output is the same
// token for token as plain decoding (rows are batch-invariant, so the logits are the same bits).
#include <functional>
#include <vector>

#include "runtime/session.h"

namespace camelid {

struct SpeculativeOptions {
  int max_draft = 8;             // tokens guessed per step
  Llama* draft_model = nullptr;  // a draft model with the model's vocabulary; else prompt lookup
  int ngram_max = 3, ngram_min = 1;  // prompt lookup: n-gram sizes tried, longest first
  // The session already holds the first prompt_cached tokens of the prompt (a chat's earlier
  // turns, the engine's prefix cache): only the rest is fed. Must be below the prompt's size.
  int prompt_cached = 0;
};

struct SpeculativeStats {
  long steps = 0, drafted = 0, accepted = 0;  // verification passes, tokens guessed, guesses kept
};

// As generate(), with guesses checked in batches. Throws Error when the draft model's vocabulary
// differs from the model's.
GenerateResult generate_speculative(Session& s, const std::vector<int>& prompt, const GenerateOptions& opt,
                                    const SpeculativeOptions& spec, SpeculativeStats* stats = nullptr,
                                    const std::function<bool(int)>& on_token = {});

// Prompt lookup: the tokens after the latest earlier occurrence of the history's last n tokens
// (n from ngram_max down to ngram_min), at most max_draft of them; empty when none occurs.
std::vector<int> prompt_lookup_draft(const std::vector<int>& history, int ngram_max, int ngram_min, int max_draft);

}  // namespace camelid
