#include "runtime/session.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace camelid {

Session::Session(Llama& model, int ctx, int n_batch)
    : model_(model),
      own_(std::make_unique<KVCache>(model.config(), 1, std::min(ctx, model.config().max_seq_len), model.kv_type())),
      cache_(own_.get()),
      n_batch_(std::max(1, n_batch)) {}

Session::Session(Llama& model, KVCache& cache, int seq, int pos, int n_batch)
    : model_(model), cache_(&cache), seq_(seq), n_batch_(std::max(1, n_batch)), pos_(std::max(0, std::min(pos, cache.ctx()))) {}

const std::vector<float>& Session::feed(const std::vector<int>& tokens, bool all_logits) {
  if (tokens.empty()) fail("feed: no tokens");
  if (pos_ + int(tokens.size()) > cache_->ctx())
    fail("context is full: ", pos_, " + ", tokens.size(), " tokens exceed the context size ",
         cache_->ctx());
  logits_.clear();
  for (size_t i = 0; i < tokens.size(); i += n_batch_) {
    const size_t end = std::min(tokens.size(), i + n_batch_);
    batch_.clear();
    for (size_t j = i; j < end; ++j) batch_.add(tokens[j], pos_++, seq_, all_logits || j + 1 == tokens.size());
    model_.forward(batch_, *cache_, chunk_logits_);
    if (all_logits || end == tokens.size())
      logits_.insert(logits_.end(), chunk_logits_.begin(), chunk_logits_.end());
  }
  return logits_;
}

GenerateResult generate(Session& s, const std::vector<int>& prompt, const GenerateOptions& opt,
                        const std::function<bool(int)>& on_token) {
  const ModelConfig& c = s.model().config();
  Sampler sampler(opt.sampling);
  std::vector<int> history = prompt;
  GenerateResult r;
  r.finish_reason = "length";
  std::vector<float> logits = s.feed(prompt);
  for (int i = 0; i < opt.max_new_tokens; ++i) {
    if (opt.constraint) opt.constraint->mask(logits.data(), c.vocab_size);
    const int id = sampler.sample(logits.data(), c.vocab_size, history);
    const bool eos = std::find(c.eos_ids.begin(), c.eos_ids.end(), id) != c.eos_ids.end();
    if (opt.stop_at_eos && eos) {
      r.finish_reason = "stop";
      break;
    }
    if (opt.constraint && !eos) opt.constraint->accept(id);
    r.ids.push_back(id);
    history.push_back(id);
    if (on_token && !on_token(id)) {
      r.finish_reason = "stop";
      break;
    }
    if (i + 1 == opt.max_new_tokens) break;
    if (s.pos() >= s.ctx()) break;  // context full: "length"
    logits = s.feed({id});
  }
  return r;
}

PerplexityResult perplexity(Llama& model, const std::vector<int>& ids, int n_batch) {
  if (ids.size() < 2) fail("perplexity needs at least 2 tokens, got ", ids.size());
  const int V = model.config().vocab_size;
  Session s(model, int(ids.size()), n_batch);
  if (int(ids.size()) > s.ctx())
    fail("perplexity: ", ids.size(), " tokens exceed the model's context ", s.ctx());
  // Chunk by chunk, so a long text never holds [n, vocab] logits at once.
  double nll = 0;
  for (size_t i = 0; i + 1 < ids.size(); i += n_batch) {
    const size_t end = std::min(ids.size() - 1, i + n_batch);
    const std::vector<float>& logits =
        s.feed(std::vector<int>(ids.begin() + i, ids.begin() + end), true);
    for (size_t j = i; j < end; ++j) {
      const float* row = &logits[(j - i) * V];
      nll += logsumexp(row, V) - row[ids[j + 1]];
    }
  }
  PerplexityResult r;
  r.tokens = int(ids.size()) - 1;
  r.mean_nll = nll / r.tokens;
  r.ppl = std::exp(r.mean_nll);
  return r;
}

PerplexityResult perplexity_windows(Llama& model, const std::vector<int>& ids, int n_ctx, int bos_id, int n_batch) {
  if (n_ctx < 4) fail("perplexity: windows need at least 4 tokens, got ", n_ctx);
  if (n_ctx > model.config().max_seq_len)
    fail("perplexity: windows of ", n_ctx, " tokens exceed the model's context ", model.config().max_seq_len);
  const int chunks = int(ids.size() / size_t(n_ctx));
  if (chunks < 1) fail("perplexity: ", ids.size(), " tokens are fewer than one window of ", n_ctx);
  const int V = model.config().vocab_size, first = n_ctx / 2;
  n_batch = std::max(1, n_batch);
  Session s(model, n_ctx, n_batch);
  double nll = 0;
  std::vector<int> window;
  for (int c = 0; c < chunks; ++c) {
    window.assign(ids.begin() + size_t(c) * n_ctx, ids.begin() + size_t(c + 1) * n_ctx);
    if (bos_id >= 0) window[0] = bos_id;
    s.reset();
    // Batch by batch; logits are needed only for positions first .. n_ctx-2.
    for (int i = 0; i < n_ctx; i += n_batch) {
      const int end = std::min(n_ctx, i + n_batch);
      const bool want = end > first;
      const std::vector<float>& logits = s.feed(std::vector<int>(window.begin() + i, window.begin() + end), want);
      if (!want) continue;
      for (int j = std::max(i, first); j < end && j + 1 < n_ctx; ++j) {
        const float* row = &logits[size_t(j - i) * V];
        nll += logsumexp(row, V) - row[window[j + 1]];
      }
    }
  }
  PerplexityResult r;
  r.chunks = chunks;
  r.scored_from = first;
  r.tokens = chunks * (n_ctx - 1 - first);
  r.mean_nll = nll / r.tokens;
  r.ppl = std::exp(r.mean_nll);
  return r;
}

}  // namespace camelid
