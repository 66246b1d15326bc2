#pragma once
// Speculative decoding: a cheap guess of the next few tokens (a small draft model with the same
// vocabulary, or prompt lookup: the tokens that followed the last n-gram where it occurred
// before), checked by ONE forward pass of the model over all of them. Standard speculative
// sampling (Leviathan et al., Chen et al. 2023) keeps the output's law exactly: a guess is kept
// with probability min(1, p/q), a rejection draws from the normalised max(0, p - q), and when all
// are kept one more token comes from the model's own last distribution. Greedy output is the same
// token for token as plain decoding (rows are batch-invariant, so the logits are the same bits).
#include <algorithm>
#include <functional>
#include <vector>

#include "runtime/session.h"

namespace camelid {

struct SpeculativeOptions {
  int max_draft = 8;             // tokens guessed per step at most (see DraftPace)
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

// The parts of a speculative step that the single-sequence loop above and the engine's batched
// steps share, so both keep the same law.
using TokenDist = std::vector<std::pair<float, int>>;  // (probability, token), what a sampler draws from

// One guess of a draft model from its logits row (modified: penalties): its distribution q under
// the draft's sampler (normalised) and the token drawn from it.
int draft_guess(Sampler& draft_sampler, float* logits, int vocab, const std::vector<int>& history, TokenDist& q);

// What verify_guesses works in, kept between calls (no allocation per step).
struct VerifyScratch {
  TokenDist p, residual;
  std::vector<float> row, q_dense;
};

// Checks guesses against the model's logits ([guess.size() + 1, vocab]: after the newest token and
// after each guess): a guess is kept with probability min(1, p/q) (q: the draft's distributions,
// empty for prompt lookup's certain guesses), the first rejection draws from the normalised
// max(0, p - q), and when every guess is kept one more token comes from the last row. emit(id)
// reports each resulting token (the caller appends it to `history`, which the penalties read) and
// returns false to stop. Returns the guesses kept; *more is false when emit stopped.
int verify_guesses(Sampler& sampler, const std::vector<int>& history, const float* logits, int vocab,
                   const std::vector<int>& guess, const std::vector<TokenDist>& q,
                   const std::function<bool(int)>& emit, bool* more, VerifyScratch& scratch,
                   SpeculativeStats* stats = nullptr);

// How far a sequence guesses: further while its guesses are kept (+2), less far after a
// rejection (-1, at least 1). When even single guesses keep failing (text that does not repeat, a
// draft that disagrees) it decodes plainly for a while before guessing again (1, 2, 4 .. 16
// steps): a wrong guess costs a row of the forward pass. Only the sequence's own past counts, so
// the output keeps its law and never depends on other sequences.
struct DraftPace {
  int max = 1, len = 1, pause = 0, backoff = 0;
  DraftPace() = default;
  explicit DraftPace(int max_draft) : max(max_draft), len(max_draft) {}
  // Guesses wanted at this step (0 while paused): called once per decoding step.
  int take() {
    if (pause > 0) return --pause, 0;
    return len;
  }
  // After `kept` of `guessed` (> 0) guesses were kept.
  void update(int kept, int guessed) {
    if (kept == guessed) {
      len = std::min(max, len + 2), backoff = 0;
      return;
    }
    if (kept == 0 && guessed == 1) backoff = std::min(16, backoff ? 2 * backoff : 1), pause = backoff;
    len = std::max(1, len - 1);
  }
};

// Prompt lookup: the tokens after the latest earlier occurrence of the history's last n tokens
// (n from ngram_max down to ngram_min), at most max_draft of them; empty when none occurs.
std::vector<int> prompt_lookup_draft(const std::vector<int>& history, int ngram_max, int ngram_min, int max_draft);

}  // namespace camelid
