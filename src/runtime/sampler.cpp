#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/error.h"

namespace camelid {

void SamplingParams::validate() const {
  if (!(temperature >= 0)) fail("temperature must be >= 0, got ", temperature);
  if (!(top_p > 0 && top_p <= 1)) fail("top_p must be in (0, 1], got ", top_p);
  if (!(min_p >= 0 && min_p <= 1)) fail("min_p must be in [0, 1], got ", min_p);
  if (!(repeat_penalty > 0)) fail("repeat_penalty must be > 0, got ", repeat_penalty);
  if (repeat_last_n < 0) fail("repeat_last_n must be >= 0, got ", repeat_last_n);
  if (!(presence_penalty >= -2 && presence_penalty <= 2)) fail("presence_penalty must be in [-2, 2], got ", presence_penalty);
  if (!(frequency_penalty >= -2 && frequency_penalty <= 2)) fail("frequency_penalty must be in [-2, 2], got ", frequency_penalty);
  for (auto& [id, b] : logit_bias) {
    if (id < 0) fail("logit_bias token id must be >= 0, got ", id);
    if (!(b >= -100 && b <= 100)) fail("logit_bias values must be in [-100, 100], got ", b);
  }
}

int argmax(const float* x, int n) {
  return int(std::max_element(x, x + n) - x);  // first of equal maxima, as torch.argmax
}

double logsumexp(const float* x, int n) {
  const double mx = *std::max_element(x, x + n);
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(double(x[i]) - mx);
  return mx + std::log(s);
}

namespace {
uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Sampler::Sampler(const SamplingParams& p) : p_(p) {
  p_.validate();
  uint64_t s = p.seed;
  for (auto& st : state_) st = splitmix64(s);
}

double Sampler::uniform() {  // xoshiro256**: fast, and the same stream on every platform
  const uint64_t result = rotl(state_[1] * 5, 7) * 9, t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return double(result >> 11) * 0x1.0p-53;
}

int Sampler::sample(float* logits, int n, const std::vector<int>& history) {
  distribution(logits, n, history, cand_);
  const int id = draw(cand_);
  note(id);
  return id;
}

void Sampler::note(int id) { ++generated_[id]; }

int Sampler::draw(const std::vector<std::pair<float, int>>& dist) {
  if (p_.temperature <= 0) return dist.front().second;  // greedy: no random draw
  double total = 0;
  for (auto& c : dist) total += c.first;
  double r = uniform() * total;
  int last = dist.front().second;
  for (auto& c : dist) {
    if (c.first <= 0) continue;  // masked out (a grammar) or below float's range
    r -= c.first;
    if (r < 0) return c.second;
    last = c.second;
  }
  return last;  // rounding left r >= 0: the last token that has any weight
}

void Sampler::distribution(float* logits, int n, const std::vector<int>& history,
                           std::vector<std::pair<float, int>>& out) {
  if (p_.repeat_penalty != 1.f && p_.repeat_last_n > 0) {
    std::unordered_set<int> seen;
    const size_t from = history.size() > size_t(p_.repeat_last_n) ? history.size() - p_.repeat_last_n : 0;
    for (size_t i = from; i < history.size(); ++i) {
      int id = history[i];
      if (id < 0 || id >= n || !seen.insert(id).second) continue;
      // CTRL-style: push the logit towards "less likely" whatever its sign.
      logits[id] = logits[id] > 0 ? logits[id] / p_.repeat_penalty : logits[id] * p_.repeat_penalty;
    }
  }
  for (auto& [id, count] : generated_)
    if (id < n) logits[id] -= float(count) * p_.frequency_penalty + p_.presence_penalty;
  for (auto& [id, b] : p_.logit_bias)
    if (id < n) logits[id] += b;
  out.clear();
  if (p_.temperature <= 0) {
    out.emplace_back(1.f, argmax(logits, n));
    return;
  }
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.emplace_back(logits[i] / p_.temperature, i);
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  if (p_.top_k > 0 && p_.top_k < n) {
    std::partial_sort(out.begin(), out.begin() + p_.top_k, out.end(), by_logit);
    out.resize(size_t(p_.top_k));
  }
  // Softmax over the survivors. Without top-k nothing sorts the whole vocabulary (128K tokens:
  // 11.7 ms a token, more than a small model's decode step): min-p keeps what is likely enough
  // in place, and top-p selects its prefix by mass (expected linear time), then sorts only that.
  const float mx = std::max_element(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; })->first;
  double sum = 0;
  for (auto& c : out) sum += (c.first = std::exp(c.first - mx));
  for (auto& c : out) c.first = float(c.first / sum);
  if (p_.min_p > 0.f) {  // drop tokens less likely than min_p x the most likely one
    const float cut = float(1.0 / sum) * p_.min_p;  // the most likely token's weight was exp(0)
    std::erase_if(out, [&](const auto& c) { return c.first < cut; });
  }
  if (p_.top_p < 1.f) {  // the smallest prefix, by logit, whose mass reaches top_p
    // Sorted by logit (ties by id), not by probability: equal floats need not be equal logits.
    scaled_.resize(size_t(n));
    for (int i = 0; i < n; ++i) scaled_[size_t(i)] = logits[i] / p_.temperature;
    auto by_scaled = [&](const auto& a, const auto& b) {
      const float x = scaled_[size_t(a.second)], y = scaled_[size_t(b.second)];
      return x > y || (x == y && a.second < b.second);
    };
    // Probabilities fall in power-of-two buckets, in the logits' order: the most likely buckets
    // whose mass reaches top_p hold the prefix (trained models: a few dozen tokens of 128K).
    auto bucket = [](float p) {
      int e = 0;
      std::frexp(p, &e);
      return p > 0 ? std::clamp(-e, 0, 63) : 63;
    };
    double bucket_mass[64] = {};
    for (const auto& c : out) bucket_mass[bucket(c.first)] += c.first;
    int last_bucket = 63;
    double reached = 0;
    for (int b = 0; b < 64; ++b)
      if ((reached += bucket_mass[b]) >= p_.top_p) {
        last_bucket = b;
        break;
      }
    std::erase_if(out, [&](const auto& c) { return bucket(c.first) > last_bucket; });
    // Quickselect on mass: [0, lo) lies inside the prefix, its last token in [lo, hi).
    size_t lo = 0, hi = out.size();
    double cum = 0;
    while (hi - lo > 256) {
      const size_t m = lo + (hi - lo) / 2;
      std::nth_element(out.begin() + lo, out.begin() + m, out.begin() + hi, by_scaled);
      double mass = 0;
      for (size_t i = lo; i < m; ++i) mass += out[i].first;
      if (cum + mass >= p_.top_p) hi = m;
      else cum += mass, lo = m;
    }
    std::sort(out.begin() + lo, out.begin() + hi, by_scaled);
    size_t end = lo;
    while (end < hi) {
      cum += out[end++].first;
      if (cum >= p_.top_p) break;
    }
    out.resize(end);  // (the tokens before lo stay in selection order: a draw needs no order)
  }
}

void token_logprobs(const float* logits, int n, int id, int top, TokenLogprob& out) {
  const double lse = logsumexp(logits, n);
  out.id = id;
  out.logprob = float(double(logits[id]) - lse);
  out.top.clear();
  top = std::clamp(top, 0, n);
  if (top == 0) return;
  std::vector<std::pair<float, int>> c;
  c.reserve(n);
  for (int i = 0; i < n; ++i) c.emplace_back(logits[i], i);
  std::partial_sort(c.begin(), c.begin() + top, c.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  for (int i = 0; i < top; ++i) out.top.emplace_back(c[i].second, float(double(c[i].first) - lse));
}

}  // namespace camelid
