#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/loader_util.h"
#include "tokenizer/tokenizer_config.h"
#include "tokenizer/utf8.h"

namespace camelid {
namespace {

using tok::kSpace;
constexpr size_t kMaxMergedPieceBytes = 256;

bool is_space_marker_at(std::string_view s, size_t i) { return s.compare(i, 3, kSpace) == 0; }

}  // namespace

struct Tokenizer::Cache {
  // Bounded: a multi-megabyte request of distinct words must not grow it without end.
  static constexpr size_t kMaxWords = 1 << 16;
  std::unordered_map<std::string, std::vector<int>, Hash, std::equal_to<>> words;
  void put(std::string_view w, const int* ids, size_t n) {
    if (words.size() < kMaxWords) words.emplace(std::string(w), std::vector<int>(ids, ids + n));
  }
};

Tokenizer::Tokenizer(TokenizerSpec spec, const TokenizerConfig& cfg)
    : Tokenizer([&] {
        add_config_tokens(spec, cfg);
        return std::move(spec);
      }()) {
  apply_config(cfg);
}

Tokenizer::Tokenizer(TokenizerSpec spec) : spec_(std::move(spec)) {
  const std::string& src = spec_.source;
  const int n = int(spec_.tokens.size());
  if (n == 0) fail(src, ": empty vocabulary");
  if (spec_.tokens.size() > size_t(tok::kMaxVocab)) fail(src, ": more than ", tok::kMaxVocab, " tokens");
  if (spec_.types.size() != spec_.tokens.size()) fail(src, ": token types do not match the vocabulary");
  if (!spec_.scores.empty() && spec_.scores.size() != spec_.tokens.size()) fail(src, ": piece scores do not match the vocabulary");
  auto check_id = [&](int id, const char* what, bool allow_none) {
    if ((allow_none && id == -1) || (id >= 0 && id < n)) return;
    fail(src, ": ", what, " ", id, " is out of range (vocabulary of ", n, ")");
  };
  check_id(spec_.unk_id, "unk id", true);
  check_id(spec_.bos_id, "bos id", true);
  check_id(spec_.eos_id, "eos id", true);
  for (int id : spec_.more_eos_ids) check_id(id, "eos id", false);
  for (int id : spec_.prefix_ids) check_id(id, "special token id", false);
  for (int id : spec_.suffix_ids) check_id(id, "special token id", false);
  const bool sp = spec_.kind == TokenizerSpec::Kind::SentencePieceBpe;

  ids_.reserve(size_t(n));
  for (int i = 0; i < n; ++i)
    if (!spec_.tokens[size_t(i)].empty()) ids_.emplace(spec_.tokens[size_t(i)], i);

  std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto it = ids_.find(sp ? std::string_view(name) : std::string_view(byte_level::byte_to_text(uint8_t(b))));
    if (it != ids_.end()) byte_ids_[b] = it->second;
  }
  if (!sp)
    for (int b = 0; b < 256; ++b)
      if (byte_ids_[b] < 0) fail(src, ": byte-level vocabulary lacks the token for byte ", b);

  // What each token decodes to, as bytes.
  raw_text_.resize(size_t(n));
  for (int i = 0; i < n; ++i) {
    const std::string& t = spec_.tokens[size_t(i)];
    const TokenType type = spec_.types[size_t(i)];
    std::string& raw = raw_text_[size_t(i)];
    int byte = -1;
    if (type == TokenType::Byte && t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
        std::isxdigit(uint8_t(t[3])) && std::isxdigit(uint8_t(t[4])))
      byte = int(std::strtol(t.substr(3, 2).c_str(), nullptr, 16));
    if (type == TokenType::Control || type == TokenType::Unknown) {
      raw = t;
    } else if (sp) {
      if (byte >= 0) raw = char(byte);
      else raw = spec_.escape_spaces ? tok::replace_all(t, kSpace, " ") : t;
    } else if (type == TokenType::UserDefined || !byte_level::text_to_bytes(t, raw)) {
      raw = t;
    }
    if (!sp && type == TokenType::Normal) raw_ids_.emplace(raw, i);
  }

  if (!spec_.merges.empty() || spec_.ranked_merges) {
    for (size_t r = 0; r < spec_.merges.size(); ++r) {
      auto [a, b] = spec_.merges[r];
      if (a < 0 || b < 0 || a >= n || b >= n) fail(src, ": merge ", r, " uses a token id out of range");
      if (r > size_t(INT32_MAX)) fail(src, ": too many merges");
      auto it = ids_.find(spec_.tokens[size_t(a)] + spec_.tokens[size_t(b)]);
      if (it == ids_.end()) fail(src, ": merge ", r, " produces a token that is not in the vocabulary");
      merges_.add(a, b, int(r), it->second);
    }
  } else if (sp) {
    // SentencePiece: merging a and b is allowed when a+b is a piece; higher score merges first.
    if (spec_.scores.size() != size_t(n)) fail(src, ": piece scores do not match the vocabulary");
    for (int i = 0; i < n; ++i)
      if (std::isnan(spec_.scores[size_t(i)])) fail(src, ": piece ", i, " has score NaN");
    std::map<float, int, std::greater<float>> rank_of;
    for (int i = 0; i < n; ++i) rank_of.emplace(spec_.scores[size_t(i)], 0);
    int r = 0;
    for (auto& [score, rank] : rank_of) rank = r++;
    for (int i = 0; i < n; ++i) {
      const TokenType type = spec_.types[size_t(i)];
      if (type != TokenType::Normal && type != TokenType::UserDefined) continue;
      // Trying every split of a piece costs its length squared: a piece longer than any real one
      // (SentencePiece caps them at 16 characters) is not made by merging, only matched whole.
      const std::string_view t = spec_.tokens[size_t(i)];
      if (t.size() > kMaxMergedPieceBytes) continue;
      for (size_t k = utf8::valid_length(t, 0); k > 0 && k < t.size(); k += std::max<size_t>(1, utf8::valid_length(t, k))) {
        auto a = ids_.find(t.substr(0, k));
        if (a == ids_.end()) continue;
        auto b = ids_.find(t.substr(k));
        if (b != ids_.end()) merges_.add(a->second, b->second, rank_of[spec_.scores[size_t(i)]], i);
      }
    }
  }

  for (const std::string& p : spec_.split_patterns) splits_.emplace_back(p, src);

  // Words ("▁" + text) can be merged separately when no piece continues across a "▁" that
  // follows another character: then no merge can join two words, and the result is the same.
  if (sp) {
    split_words_ = true;
    for (int i = 0; i < n && split_words_; ++i) {
      if (spec_.types[size_t(i)] != TokenType::Normal && spec_.types[size_t(i)] != TokenType::UserDefined) continue;
      const std::string& t = spec_.tokens[size_t(i)];
      for (size_t at = t.find(kSpace, 1); at != std::string::npos && split_words_; at = t.find(kSpace, at + 1))
        if (at < 3 || !is_space_marker_at(t, at - 3)) split_words_ = false;
    }
  }

  for (const AddedToken& a : spec_.added) {
    if (a.id < 0 || a.id >= n) fail(src, ": added token ", tok::quote(a.content), " has id ", a.id, " out of range (vocabulary of ", n, ")");
    if (a.content.empty()) fail(src, ": added token ", a.id, " is empty");
    // Text is split where added tokens match: invalid UTF-8 there could cut a character in two.
    if (!utf8::is_valid(a.content)) fail(src, ": added token ", a.id, " (", tok::quote(a.content), ") is not valid UTF-8");
    if (a.content.size() > tok::kMaxAddedTokenBytes)
      fail(src, ": added token ", a.id, " is ", a.content.size(), " bytes long (at most ", tok::kMaxAddedTokenBytes, ")");
  }
  added_ = AddedTokenMatcher(spec_.added);
  if (spec_.eos_id >= 0) eos_ids_.push_back(spec_.eos_id);
  for (int id : spec_.more_eos_ids)
    if (std::find(eos_ids_.begin(), eos_ids_.end(), id) == eos_ids_.end()) eos_ids_.push_back(id);
}

const std::string& Tokenizer::token_text(int id) const {
  if (id < 0 || id >= vocab_size()) fail("token id ", id, " is out of range (vocabulary of ", vocab_size(), ")");
  return spec_.tokens[size_t(id)];
}

const std::string& Tokenizer::token_bytes(int id) const {
  if (id < 0 || id >= vocab_size()) fail("token id ", id, " is out of range (vocabulary of ", vocab_size(), ")");
  return raw_text_[size_t(id)];
}

int Tokenizer::token_id(std::string_view text) const {
  auto it = ids_.find(text);
  return it == ids_.end() ? -1 : it->second;
}

bool Tokenizer::is_special(int id) const {
  if (id < 0 || id >= vocab_size()) return false;
  const TokenType t = spec_.types[size_t(id)];
  return t == TokenType::Control || t == TokenType::Unknown;
}

bool Tokenizer::contains_special_text(std::string_view text) const { return added_.contains_special(text); }

// ---- encoding ----

std::vector<int> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  return encode_segments({Segment{std::string(text), parse_special}}, add_special);
}

std::vector<int> Tokenizer::encode_segments(const std::vector<Segment>& segments, bool add_special) const {
  return encode_segments_at(segments, add_special, true);
}

std::vector<int> Tokenizer::encode_continuation(std::string_view text) const {
  return encode_segments_at({Segment{std::string(text), false}}, false, false);
}

std::vector<int> Tokenizer::encode_segments_at(const std::vector<Segment>& segments, bool add_special, bool at_text_start) const {
  // Added tokens split the input; the text between them is encoded in runs that may span
  // segment boundaries, so the result is that of the concatenated text (only the special-token
  // rule differs per segment).
  std::vector<int> out;
  if (add_special) out = spec_.prefix_ids;
  Cache cache;
  std::string run;
  bool run_first = true, at_start = true;
  auto flush = [&] {
    // A continuation's first run gets no dummy-prefix space, whatever the tokenizer's rule.
    if (!run.empty()) encode_text(run, run_first, cache, out, run_first && !at_text_start);
    run.clear();
  };
  std::vector<std::pair<size_t, const AddedToken*>> starts;
  for (const Segment& seg : segments) {
    const std::string text = utf8::sanitize(seg.text);
    // Left to right, the longest token at the first position where one starts; then on after it.
    starts.clear();
    added_.find_starts(text, seg.parse_special, starts);
    size_t last = 0, i = 0;
    for (auto [at, hit] : starts) {
      if (at < i) continue;  // inside the token just taken
      i = at;
      size_t b = i, e = i + hit->content.size();
      if (hit->lstrip) while (b > last && std::isspace(uint8_t(text[b - 1]))) --b;
      if (hit->rstrip) while (e < text.size() && std::isspace(uint8_t(text[e]))) ++e;
      if (b > last) {
        if (run.empty()) run_first = at_start;
        run.append(text, last, b - last);
      }
      flush();
      out.push_back(hit->id);
      at_start = false;
      last = i = e;
    }
    if (last < text.size()) {
      if (run.empty()) run_first = at_start;
      run.append(text, last, std::string::npos);
      at_start = false;
    }
  }
  flush();
  if (add_special) out.insert(out.end(), spec_.suffix_ids.begin(), spec_.suffix_ids.end());
  return out;
}

void Tokenizer::encode_text(std::string_view text, bool first, Cache& cache, std::vector<int>& out, bool no_prefix) const {
  if (spec_.kind == TokenizerSpec::Kind::SentencePieceBpe) encode_sentencepiece(text, first, cache, out, no_prefix);
  else encode_byte_level(text, cache, out);
}

void Tokenizer::encode_sentencepiece(std::string_view text, bool first, Cache& cache, std::vector<int>& out, bool no_prefix) const {
  using P = TokenizerSpec::Prefix;
  std::string norm;
  norm.reserve(text.size() + text.size() / 4 + 3);
  if (!no_prefix && (spec_.dummy_prefix == P::Always || (spec_.dummy_prefix == P::First && first))) norm = kSpace;
  for (char c : text) {
    if (c == ' ' && spec_.escape_spaces) norm += kSpace;
    else norm += c;
  }
  std::vector<int> ids, lens;
  auto word = [&](std::string_view w) {
    if (w.empty()) return;
    const bool cacheable = w.size() <= 64;
    if (cacheable) {
      auto it = cache.words.find(w);
      if (it != cache.words.end()) { out.insert(out.end(), it->second.begin(), it->second.end()); return; }
    }
    ids.clear(), lens.clear();
    for (size_t i = 0; i < w.size();) {
      const size_t n = std::max<size_t>(1, utf8::valid_length(w, i));
      auto it = ids_.find(w.substr(i, n));
      ids.push_back(it == ids_.end() ? -1 : it->second);
      lens.push_back(int(n));
      i += n;
    }
    merges_.apply(ids, lens);
    const size_t before = out.size();
    emit_word(w, ids, lens, out);
    if (cacheable) cache.put(w, out.data() + before, out.size() - before);
  };
  if (!split_words_) return word(norm);
  size_t start = 0;
  for (size_t i = 3; i + 3 <= norm.size(); ++i) {
    if (is_space_marker_at(norm, i) && !is_space_marker_at(norm, i - 3)) {
      word(std::string_view(norm).substr(start, i - start));
      start = i;
    }
  }
  word(std::string_view(norm).substr(start));
}

// Merged symbols -> ids; a symbol outside the vocabulary falls back to its bytes or <unk>.
void Tokenizer::emit_word(std::string_view word, std::vector<int>& ids, std::vector<int>& lens, std::vector<int>& out) const {
  size_t pos = 0;
  for (size_t k = 0; k < ids.size(); ++k) {
    if (ids[k] >= 0) {
      out.push_back(ids[k]);
    } else {
      for (int j = 0; j < lens[k]; ++j) {
        const int b = spec_.byte_fallback ? byte_ids_[uint8_t(word[pos + size_t(j)])] : -1;
        if (b >= 0) { out.push_back(b); continue; }
        if (spec_.unk_id < 0) fail(spec_.source, ": cannot encode a character: no byte fallback and no <unk> token");
        if (!(spec_.fuse_unk && !out.empty() && out.back() == spec_.unk_id)) out.push_back(spec_.unk_id);
        if (!spec_.byte_fallback) break;  // one <unk> per unknown character
      }
    }
    pos += size_t(lens[k]);
  }
}

void Tokenizer::encode_byte_level(std::string_view text, Cache& cache, std::vector<int>& out) const {
  std::vector<std::string_view> pieces{text}, next;
  for (const RegexSplit& s : splits_) {
    next.clear();
    for (std::string_view p : pieces) s.split(p, next);
    pieces.swap(next);
  }
  std::vector<int> ids, lens;
  for (std::string_view p : pieces) {
    const bool cacheable = p.size() <= 64;
    if (cacheable) {
      auto it = cache.words.find(p);
      if (it != cache.words.end()) { out.insert(out.end(), it->second.begin(), it->second.end()); continue; }
    }
    const size_t before = out.size();
    auto whole = spec_.ignore_merges ? raw_ids_.find(p) : raw_ids_.end();
    if (whole != raw_ids_.end()) {
      out.push_back(whole->second);
    } else {
      ids.clear(), lens.clear();
      for (char c : p) ids.push_back(byte_ids_[uint8_t(c)]), lens.push_back(1);
      merges_.apply(ids, lens);
      out.insert(out.end(), ids.begin(), ids.end());
    }
    if (cacheable) cache.put(p, out.data() + before, out.size() - before);
  }
}

// ---- decoding ----

std::string Tokenizer::decode_bytes(const std::vector<int>& ids, bool skip_special, bool continuation, bool sanitize) const {
  std::string out, group;
  // Consecutive byte-fallback tokens form one character or, if invalid, one U+FFFD per byte
  // (Hugging Face's ByteFallback rule).
  auto flush_group = [&] {
    if (group.empty()) return;
    if (!sanitize || utf8::sanitize(group) == group) out += group;
    else for (size_t i = 0; i < group.size(); ++i) out += utf8::kReplacement;
    group.clear();
  };
  for (int id : ids) {
    if (id < 0 || id >= vocab_size()) fail("token id ", id, " is out of range (vocabulary of ", vocab_size(), ")");
    if (skip_special && is_special(id)) continue;
    if (spec_.types[size_t(id)] == TokenType::Byte && spec_.kind == TokenizerSpec::Kind::SentencePieceBpe) {
      group += raw_text_[size_t(id)];
      continue;
    }
    flush_group();
    out += raw_text_[size_t(id)];
  }
  flush_group();
  if (!continuation && spec_.strip_leading_space && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return sanitize ? utf8::sanitize(out) : out;
}

std::string Tokenizer::decode(const std::vector<int>& ids, bool skip_special, bool continuation) const {
  return decode_bytes(ids, skip_special, continuation, true);
}

std::string StreamDecoder::push(int id) {
  // Checked before it is held: a bad id must not stay pending and fail every later push.
  if (id < 0 || id >= tok_->vocab_size()) fail("token id ", id, " is out of range (vocabulary of ", tok_->vocab_size(), ")");
  pending_.push_back(id);
  const std::string raw = tok_->decode_bytes(pending_, skip_special_, true, false);
  // Hold back an unfinished character; a run of more than a few tokens cannot be one.
  if (utf8::incomplete_tail(raw) > 0 && pending_.size() < 4) return {};
  std::string text = tok_->decode(pending_, skip_special_, started_);
  if (!raw.empty()) started_ = true;
  pending_.clear();
  return text;
}

std::string StreamDecoder::flush() {
  if (pending_.empty()) return {};
  std::string text = tok_->decode(pending_, skip_special_, started_);
  started_ = true;
  pending_.clear();
  return text;
}

}  // namespace camelid
