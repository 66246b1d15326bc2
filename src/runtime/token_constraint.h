#pragma once
// A rule on which tokens may come next (a grammar, a JSON schema), applied by the generation
// loops: mask() before sampling, accept() with the token chosen. Used from one thread at a time.
namespace camelid {

struct TokenConstraint {
  virtual ~TokenConstraint() = default;
  // Sets the logit of every token that may not come next to -infinity (end tokens included
  // unless can_end()). Throws Error when no token may.
  virtual void mask(float* logits, int n_vocab) = 0;
  // The token chosen (not an end token); throws Error if the constraint forbids it.
  virtual void accept(int token) = 0;
  // The output so far is complete: an end token may come now.
  virtual bool can_end() const = 0;
};

}  // namespace camelid
