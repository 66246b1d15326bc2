#include "runtime/speculative.h"

#include <algorithm>
#include <memory>

#include "core/error.h"

namespace camelid {

namespace {

// A sampler's weights as probabilities (they sum to less than 1 after top-p / min-p).
void normalize(TokenDist& d) {
  double total = 0;
  for (const auto& e : d) total += e.first;
  for (auto& e : d) e.first = float(e.first / total);
}

float prob_of(const TokenDist& d, int id) {
  for (const auto& [p, t] : d)
    if (t == id) return p;
  return 0.f;
}

}  // namespace

int draft_guess(Sampler& draft_sampler, float* logits, int vocab, const std::vector<int>& history, TokenDist& q) {
  draft_sampler.distribution(logits, vocab, history, q);
  normalize(q);
  return draft_sampler.draw(q);
}

int verify_guesses(Sampler& sampler, const std::vector<int>& history, const float* logits, int V,
                   const std::vector<int>& guess, const std::vector<TokenDist>& q,
                   const std::function<bool(int)>& emit, bool* more_out, VerifyScratch& x, SpeculativeStats* st) {
  x.row.resize(size_t(V));
  if (x.q_dense.size() != size_t(V)) x.q_dense.assign(size_t(V), 0.f);  // all zero, except while a rejection is resolved
  auto load = [&](size_t j) { std::copy(logits + j * size_t(V), logits + (j + 1) * size_t(V), x.row.begin()); };
  // Each token reported is noted first: the penalties that count generated tokens see it.
  auto report = [&](int id) {
    sampler.note(id);
    return emit(id);
  };
  size_t kept = 0;
  bool more = true, rejected = false;
  for (; kept < guess.size() && more; ++kept) {
    load(kept);
    sampler.distribution(x.row.data(), V, history, x.p);
    normalize(x.p);
    const int g = guess[kept];
    const float pg = prob_of(x.p, g), qg = q.empty() ? 1.f : prob_of(q[kept], g);
    if (pg > 0 && (pg >= qg || sampler.uniform() * qg < pg)) {
      if (st) ++st->accepted;
      more = report(g);
      continue;
    }
    // Rejected: draw from the normalised max(0, p - q).
    // q spread over the vocabulary first: p and q may each hold the whole vocabulary.
    if (q.empty()) {
      x.q_dense[size_t(g)] = 1.f;
    } else {
      for (const auto& [qq, t] : q[kept]) x.q_dense[size_t(t)] = qq;
    }
    x.residual.clear();
    for (const auto& [pp, t] : x.p) {
      const float rest = pp - x.q_dense[size_t(t)];
      if (rest > 0) x.residual.emplace_back(rest, t);
    }
    if (q.empty()) {
      x.q_dense[size_t(g)] = 0.f;
    } else {
      for (const auto& e : q[kept]) x.q_dense[size_t(e.second)] = 0.f;
    }
    if (x.residual.empty()) x.residual = x.p;  // p <= q everywhere: only rounding can get here
    more = report(sampler.draw(x.residual));
    rejected = true;
    break;
  }
  if (more && !rejected) {  // every guess kept: the model's next token comes free
    load(guess.size());
    sampler.distribution(x.row.data(), V, history, x.p);
    more = report(sampler.draw(x.p));
  }
  *more_out = more;
  return int(kept);
}

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
  // (verify_guesses notes it in the sampler first; an eos ends the generation anyway.)
  auto emit = [&](int id) {
    if (opt.stop_at_eos && std::find(c.eos_ids.begin(), c.eos_ids.end(), id) != c.eos_ids.end()) {
      r.finish_reason = "stop";
      return false;
    }
    r.ids.push_back(id);
    history.push_back(id);
    if (on_token && !on_token(id)) {
      r.finish_reason = "stop";
      return false;
    }
    return int(r.ids.size()) < opt.max_new_tokens && int(history.size()) - 1 < s.ctx();
  };

  TokenDist p;
  std::vector<float> row(size_t(V), 0.f);
  {
    const std::vector<float>& logits = s.feed(std::vector<int>(prompt.begin() + spec.prompt_cached, prompt.end()));
    std::copy(logits.end() - V, logits.end(), row.begin());
    sampler.distribution(row.data(), V, history, p);
  }
  if (opt.max_new_tokens <= 0) {
    if (stats) *stats = st;
    return r;
  }
  {
    const int first = sampler.draw(p);
    sampler.note(first);
    if (!emit(first)) {
      if (stats) *stats = st;
      return r;
    }
  }
  std::vector<int> guess;
  std::vector<TokenDist> q;  // the draft's distribution for each guess (empty: prompt lookup's certainty)
  VerifyScratch scratch;
  DraftPace pace(spec.max_draft);
  for (;;) {
    // Room: the newest token and the guesses must fit the context, and no more guesses than
    // tokens still wanted.
    int room = std::min({pace.take(), s.ctx() - int(history.size()), opt.max_new_tokens - int(r.ids.size()) - 1});
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
        const int g = draft_guess(draft_sampler, row.data(), V, dhist, q.back());
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
    bool more = true;
    const int kept = verify_guesses(sampler, history, logits.data(), V, guess, q, emit, &more, scratch, &st);
    if (!guess.empty()) pace.update(kept, int(guess.size()));
    // The caches keep the newest token of before and the guesses kept.
    s.rewind(base + 1 + kept);
    if (draft) draft->rewind(std::min(draft->pos(), base + 1 + kept));
    if (!more) break;
  }
  if (stats) *stats = st;
  return r;
}

}  // namespace camelid
