#include "runtime/speculative.h"

#include <algorithm>
#include <memory>

#include "core/error.h"

namespace camelid {

namespace {

using Dist = std::vector<std::pair<float, int>>;  // (probability, token), what a sampler draws from

// A sampler's weights as probabilities (they sum to less than 1 after top-p / min-p).
void normalize(Dist& d) {
  double total = 0;
  for (const auto& e : d) total += e.first;
  for (auto& e : d) e.first = float(e.first / total);
}

float prob_of(const Dist& d, int id) {
  for (const auto& [p, t] : d)
    if (t == id) return p;
  return 0.f;
}

}  // namespace

std::vector<int> prompt_lookup_draft(const std::vector<int>& history, int ngram_max, int ngram_min, int max_draft) {
  const int H = int(history.size());
  for (int n = std::min(ngram_max, H - 1); n >= std::max(1, ngram_min); --n) {
    const auto suffix = history.end() - n;
    // The latest earlier occurrence: recent text predicts best.
    for (int start = H - n - 1; start >= 0; --start) {
      if (!std::equal(suffix, history.end(), history.begin() + start)) continue;
      const int from = start + n, to = std::min(H, from + max_draft);
      return std::vector<int>(history.begin() + from, history.begin() + to);
    }
  }
  return {};
}

GenerateResult generate_speculative(Session& s, const std::vector<int>& prompt, const GenerateOptions& opt,
                                    const SpeculativeOptions& spec, SpeculativeStats* stats,
                                    const std::function<bool(int)>& on_token) {
  // Drafted tokens would have to pass the constraint one by one: not done yet, so refuse it.
  if (opt.constraint) fail("speculative decoding cannot be combined with a grammar or JSON schema yet");
  const ModelConfig& c = s.model().config();
  const int V = c.vocab_size;
  if (spec.draft_model && spec.draft_model->config().vocab_size != V)
    fail("the draft model's vocabulary has ", spec.draft_model->config().vocab_size, " tokens, the model's ", V);
  if (spec.max_draft < 1 || spec.max_draft > 64) fail("--draft-max must be in 1..64, got ", spec.max_draft);
  if (spec.prompt_cached < 0 || spec.prompt_cached >= int(prompt.size()) || s.pos() != spec.prompt_cached)
    fail("speculative decoding: ", spec.prompt_cached, " cached prompt tokens for a ", prompt.size(),
         "-token prompt in a session at position ", s.pos());
  SpeculativeStats st;
  Sampler sampler(opt.sampling);
  SamplingParams draft_params = opt.sampling;
  draft_params.seed ^= 0x5eed5eed5eed5eedull;  // the draft's own stream
  Sampler draft_sampler(draft_params);
  std::unique_ptr<Session> draft;
  if (spec.draft_model) draft = std::make_unique<Session>(*spec.draft_model, s.ctx());

  std::vector<int> history = prompt;
  GenerateResult r;
  r.finish_reason = "length";
  // Reports a token; false when the generation is over. All tokens but the newest are fed.
  auto emit = [&](int id) {
    if (opt.stop_at_eos && std::find(c.eos_ids.begin(), c.eos_ids.end(), id) != c.eos_ids.end()) {
      r.finish_reason = "stop";
      return false;
    }
    r.ids.push_back(id);
    history.push_back(id);
    sampler.note(id);
    if (on_token && !on_token(id)) {
      r.finish_reason = "stop";
      return false;
    }
    return int(r.ids.size()) < opt.max_new_tokens && int(history.size()) - 1 < s.ctx();
  };

  Dist p;
  std::vector<float> row(size_t(V), 0.f);
  std::vector<float> q_dense(size_t(V), 0.f);  // all zero, except while a rejection is resolved
  {
    const std::vector<float>& logits = s.feed(std::vector<int>(prompt.begin() + spec.prompt_cached, prompt.end()));
    std::copy(logits.end() - V, logits.end(), row.begin());
    sampler.distribution(row.data(), V, history, p);
  }
  if (opt.max_new_tokens <= 0 || !emit(sampler.draw(p))) {
    if (stats) *stats = st;
    return r;
  }
  std::vector<int> guess;
  std::vector<Dist> q;  // the draft's distribution for each guess (empty: prompt lookup's certainty)
  for (;;) {
    // Room: the newest token and the guesses must fit the context, and no more guesses than
    // tokens still wanted.
    int room = std::min({spec.max_draft, s.ctx() - int(history.size()), opt.max_new_tokens - int(r.ids.size()) - 1});
    if (draft) room = std::min(room, draft->ctx() - int(history.size()));
    guess.clear();
    q.clear();
    if (room > 0 && draft) {
      // The draft has fed a prefix of the history (the guesses it made that were kept).
      std::vector<int> todo(history.begin() + draft->pos(), history.end());
      std::vector<int> dhist = history;
      for (int j = 0; j < room; ++j) {
        const std::vector<float>& dl = draft->feed(todo);
        std::copy(dl.end() - V, dl.end(), row.begin());
        q.emplace_back();
        draft_sampler.distribution(row.data(), V, dhist, q.back());
        normalize(q.back());
        const int g = draft_sampler.draw(q.back());
        guess.push_back(g);
        dhist.push_back(g);
        todo = {g};
      }
    } else if (room > 0) {
      guess = prompt_lookup_draft(history, spec.ngram_max, spec.ngram_min, room);
    }
    // One pass over the newest token and the guesses: logits for each guess and one more.
    const int base = s.pos();
    std::vector<int> feed = {history.back()};
    feed.insert(feed.end(), guess.begin(), guess.end());
    const std::vector<float>& logits = s.feed(feed, true);
    ++st.steps;
    st.drafted += long(guess.size());
    size_t kept = 0;
    bool more = true, rejected = false;
    for (; kept < guess.size() && more; ++kept) {
      std::copy(logits.begin() + long(kept) * V, logits.begin() + long(kept + 1) * V, row.begin());
      sampler.distribution(row.data(), V, history, p);
      normalize(p);
      const int g = guess[kept];
      const float pg = prob_of(p, g), qg = q.empty() ? 1.f : prob_of(q[kept], g);
      if (pg > 0 && (pg >= qg || sampler.uniform() * qg < pg)) {
        ++st.accepted;
        more = emit(g);
        continue;
      }
      // Rejected: draw from the normalised max(0, p - q).
      // q spread over the vocabulary first: p and q may each hold the whole vocabulary.
      if (q.empty()) {
        q_dense[size_t(g)] = 1.f;
      } else {
        for (const auto& [qq, t] : q[kept]) q_dense[size_t(t)] = qq;
      }
      Dist residual;
      for (const auto& [pp, t] : p) {
        const float rest = pp - q_dense[size_t(t)];
        if (rest > 0) residual.emplace_back(rest, t);
      }
      if (q.empty()) {
        q_dense[size_t(g)] = 0.f;
      } else {
        for (const auto& e : q[kept]) q_dense[size_t(e.second)] = 0.f;
      }
      if (residual.empty()) residual = p;  // p <= q everywhere: only rounding can get here
      more = emit(sampler.draw(residual));
      rejected = true;
      break;
    }
    if (more && !rejected) {  // every guess kept: the model's next token comes free
      std::copy(logits.end() - V, logits.end(), row.begin());
      sampler.distribution(row.data(), V, history, p);
      more = emit(sampler.draw(p));
    }
    // The caches keep the newest token of before and the guesses kept.
    s.rewind(base + 1 + int(kept));
    if (draft) draft->rewind(std::min(draft->pos(), base + 1 + int(kept)));
    if (!more) break;
  }
  if (stats) *stats = st;
  return r;
}

}  // namespace camelid
