#include "train/pref_batch.h"

#include <algorithm>

#include "core/error.h"
#include "model/llama_train.h"

namespace camelid::train {

int pair_row_length(const PreferencePair& p, bool for_lm) {
  const size_t n = p.prompt.size() + std::max(p.chosen.size(), p.rejected.size());
  return int(std::min<size_t>(n - (for_lm ? 1 : 0), size_t(INT32_MAX)));
}

PairRows pack_pairs(const std::vector<PreferencePair>& pairs, const std::vector<int64_t>& which, bool for_lm) {
  PairRows r;
  r.B = int(2 * which.size());
  for (int64_t i : which) r.T = std::max(r.T, pair_row_length(pairs.at(size_t(i)), for_lm));
  if (r.T <= 0) fail("preference batch: empty sequences");
  const size_t T = size_t(r.T);
  r.tokens.assign(size_t(r.B) * T, 0);
  r.targets.assign(size_t(r.B) * T, -1);
  r.last.resize(size_t(r.B));
  for (size_t k = 0; k < which.size(); ++k) {
    const PreferencePair& p = pairs[size_t(which[k])];
    for (int side = 0; side < 2; ++side) {
      const std::vector<int>& resp = side == 0 ? p.chosen : p.rejected;
      std::vector<int> seq = p.prompt;
      seq.insert(seq.end(), resp.begin(), resp.end());
      const size_t row = 2 * k + size_t(side), P = p.prompt.size();
      int* tok = &r.tokens[row * T];
      int* tgt = &r.targets[row * T];
      const size_t n = for_lm ? seq.size() - 1 : seq.size();
      std::copy(seq.begin(), seq.begin() + ptrdiff_t(n), tok);
      r.last[row] = int(n) - 1;
      if (for_lm)  // input t predicts seq[t+1]: counted when that is a response token
        for (size_t t = P - 1; t < n; ++t) tgt[t] = seq[t + 1];
    }
  }
  return r;
}

std::vector<double> row_logprobs(float* logits, const int* targets, int B, int T, int vocab) {
  std::vector<double> out(static_cast<size_t>(B));
  for (int b = 0; b < B; ++b)
    out[size_t(b)] = -cross_entropy(logits + size_t(b) * T * vocab, targets + size_t(b) * T, T, vocab, 1.f);
  return out;
}

void scale_rows(float* logits, const std::vector<double>& coef, int B, int T, int vocab) {
  for (int b = 0; b < B; ++b) {
    const float c = float(coef[size_t(b)]);
    float* z = logits + size_t(b) * T * vocab;
    for (size_t i = 0; i < size_t(T) * vocab; ++i) z[i] *= c;
  }
}

}  // namespace camelid::train
