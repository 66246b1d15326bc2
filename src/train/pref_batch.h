#pragma once
// Micro-batches of preference pairs: each pair gives two rows (2i: prompt + chosen, 2i+1:
// prompt + rejected), right-padded to the longest row. Attention is causal, so padding after a
// sequence changes nothing at its positions: a padded row computes exactly what the sequence
// alone would.
#include <cstdint>
#include <vector>

#include "train/preference_data.h"

namespace camelid::train {

struct PairRows {
  int B = 0, T = 0;                 // rows (2 per pair) and row length
  std::vector<int> tokens;          // [B*T]
  std::vector<int> targets;         // [B*T]: the next token where it is a response token, else -1
  std::vector<int> last;            // per row: position of its sequence's last token in `tokens`
};

// for_lm: inputs are each sequence but its last token, targets the response tokens (DPO: the
// log-probability of the responses). Otherwise inputs are whole sequences (a reward model reads
// the final hidden state at `last`) and targets are all -1. The pad token is 0.
PairRows pack_pairs(const std::vector<PreferencePair>& pairs, const std::vector<int64_t>& which, bool for_lm);

// Longest row pack_pairs would make for this pair (to check it against the model's context).
int pair_row_length(const PreferencePair& p, bool for_lm);

// Per row, the sum of log softmax(logits)[target] over its counted targets; each logits row is
// replaced by (softmax - onehot) where counted, 0 elsewhere (cross_entropy with scale 1). Double.
std::vector<double> row_logprobs(float* logits, const int* targets, int B, int T, int vocab);

// Multiplies row r's T logits rows by coef[r] (turning (softmax - onehot) into dLoss/dlogits).
void scale_rows(float* logits, const std::vector<double>& coef, int B, int T, int vocab);

}  // namespace camelid::train
