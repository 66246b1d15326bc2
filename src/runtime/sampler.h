#pragma once
// Picks the next token from logits: repetition penalty, OpenAI's presence/frequency penalties and
// logit bias, then greedy (temperature 0) or temperature -> top-k -> top-p -> min-p -> draw from a
// seeded generator (same seed, same output).
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

namespace camelid {

struct SamplingParams {
  float temperature = 0.8f;      // <= 0: greedy
  int top_k = 40;                // <= 0: off
  float top_p = 0.95f;           // >= 1: off
  float min_p = 0.05f;           // <= 0: off
  float repeat_penalty = 1.0f;   // 1: off; applied to tokens among the last repeat_last_n
  int repeat_last_n = 64;
  // OpenAI's: logit -= count * frequency_penalty + (count > 0) * presence_penalty, count = times
  // the token was generated so far (the prompt does not count).
  float presence_penalty = 0.f;  // -2..2
  float frequency_penalty = 0.f; // -2..2
  std::vector<std::pair<int, float>> logit_bias;  // token id -> added to its logit (-100..100)
  uint64_t seed = 0;

  void validate() const;         // throws Error naming the bad option
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);

  // logits has n entries and may be modified; history is the sequence so far (prompt included).
  // On return, logits hold the distribution after penalties and bias (before temperature):
  // token_logprobs() reads them.
  int sample(float* logits, int n, const std::vector<int>& history);

  // sample() in three parts, for speculative decoding. distribution(): the tokens a draw may
  // return with their weights (proportional to probabilities; greedy: the argmax alone), after
  // the penalties, which it applies to logits. draw(): one draw from such a list. note(): a token
  // was generated (penalties that count generated tokens).
  void distribution(float* logits, int n, const std::vector<int>& history, std::vector<std::pair<float, int>>& out);
  int draw(const std::vector<std::pair<float, int>>& dist);
  void note(int id);

  double uniform();  // [0, 1), 53 random bits

 private:
  SamplingParams p_;
  uint64_t state_[4];
  std::vector<std::pair<float, int>> cand_;
  std::vector<float> scaled_;  // logits / temperature, for top-p's ordering
  std::unordered_map<int, int> generated_;  // token -> times this sampler returned it
};

// A token's log-probability and the `top` most likely tokens' (highest first, ties by id) under
// log_softmax(logits): the final distribution after penalties, at temperature 1.
struct TokenLogprob {
  int id = -1;
  float logprob = 0;
  std::vector<std::pair<int, float>> top;
};
void token_logprobs(const float* logits, int n, int id, int top, TokenLogprob& out);

int argmax(const float* x, int n);
double logsumexp(const float* x, int n);

}  // namespace camelid
