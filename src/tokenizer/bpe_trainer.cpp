#include "tokenizer/bpe_trainer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/bpe_merge_learner.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/loader_util.h"
#include "tokenizer/regex_split.h"
#include "tokenizer/utf8.h"

namespace camelid {
namespace {

using tok::kSpace;
// Longer words are counted in pieces of this many characters (bytes for byte-level): a merge
// recounts each word it touches, so an unbounded word (a line of CJK text has no spaces, a
// hostile file may have megabytes of one letter) would make training quadratic. SentencePiece
// caps pieces at 16 characters; 256 leaves every real token whole.
constexpr size_t kMaxWordUnits = 256;
constexpr size_t kBlockBytes = 1 << 20;  // files are read and counted in blocks of whole lines

bool is_space_at(std::string_view s, size_t i) { return s.compare(i, 3, kSpace) == 0; }

std::string byte_token(int b) {
  char name[8];
  std::snprintf(name, sizeof name, "<0x%02X>", b);
  return name;
}

}  // namespace

const std::vector<std::string>& trained_special_tokens(TokenizerTrainType type) {
  static const std::vector<std::string> sp{"<unk>", "<s>", "</s>"};
  static const std::vector<std::string> bl{"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                           "<|end_header_id|>", "<|eot_id|>"};
  return type == TokenizerTrainType::SentencePieceBpe ? sp : bl;
}

int64_t min_train_vocab(TokenizerTrainType type) {
  // SentencePiece: the specials, 256 byte tokens and "▁" (without it a space would decode as
  // the three bytes of "▁", not as a space). Byte-level: the 256 bytes and the specials.
  return int64_t(trained_special_tokens(type).size()) + 256 + (type == TokenizerTrainType::SentencePieceBpe ? 1 : 0);
}

struct TokenizerTrainer::Impl {
  TokenizerTrainOptions opts;
  std::unordered_map<std::string, int64_t> words;
  uint64_t bytes = 0, n_words = 0;
  bool full = false;  // max_bytes reached: no more text is taken
  std::unique_ptr<RegexSplit> split;  // byte-level pre-tokenizer

  void count(std::string_view w) {
    // Pieces of at most kMaxWordUnits characters (whole characters, so each stays valid UTF-8).
    const bool chars = opts.type == TokenizerTrainType::SentencePieceBpe;
    while (!w.empty()) {
      size_t end = 0;
      for (size_t units = 0; end < w.size() && units < kMaxWordUnits; ++units)
        end += chars ? std::max<size_t>(1, utf8::valid_length(w, end)) : 1;
      ++words[std::string(w.substr(0, end))];
      ++n_words;
      w.remove_prefix(end);
    }
  }

  void add_sentencepiece_line(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return;
    // The normalizer of the written tokenizer.json: prepend "▁", spaces -> "▁". Words start at a
    // "▁" that follows another character (a run of "▁" stays with the word after it, as
    // SentencePiece's whitespace-only pieces do), so no token has "▁" after another character.
    std::string norm = kSpace;
    for (char c : line) {
      if (c == ' ') norm += kSpace;
      else norm += c;
    }
    size_t start = 0;
    for (size_t i = 3; i + 3 <= norm.size(); ++i) {
      if (is_space_at(norm, i) && !is_space_at(norm, i - 3)) {
        count(std::string_view(norm).substr(start, i - start));
        start = i;
      }
    }
    count(std::string_view(norm).substr(start));
  }

  void add_block(std::string_view text) {
    const std::string clean = utf8::sanitize(text);
    if (opts.type == TokenizerTrainType::ByteLevelBpe) {
      std::vector<std::string_view> pieces;
      split->split(clean, pieces);
      for (std::string_view p : pieces) count(p);
      return;
    }
    std::string_view rest = clean;
    while (!rest.empty()) {
      const size_t nl = rest.find('\n');
      add_sentencepiece_line(rest.substr(0, nl));
      if (nl == std::string_view::npos) break;
      rest.remove_prefix(nl + 1);
    }
  }

  TrainedTokenizer train(const TrainProgressFn& progress);
};

TokenizerTrainer::TokenizerTrainer(const TokenizerTrainOptions& opts) : impl_(std::make_unique<Impl>()) {
  const int64_t lo = min_train_vocab(opts.type);
  if (opts.vocab_size < lo)
    fail("--vocab-size: ", opts.vocab_size, " is too small: at least ", lo,
         opts.type == TokenizerTrainType::SentencePieceBpe ? " (3 special tokens, 256 byte tokens and '\xE2\x96\x81')"
                                                           : " (256 byte tokens and 5 special tokens)");
  if (opts.vocab_size > kMaxTrainVocab) fail("--vocab-size: ", opts.vocab_size, " is too large: at most ", kMaxTrainVocab);
  if (opts.min_frequency < 1) fail("--min-frequency: must be at least 1, got ", opts.min_frequency);
  impl_->opts = opts;
  if (opts.type == TokenizerTrainType::ByteLevelBpe) impl_->split = std::make_unique<RegexSplit>(tok::kLlama3Pattern, "pre-tokenizer");
}

TokenizerTrainer::~TokenizerTrainer() = default;
TokenizerTrainer::TokenizerTrainer(TokenizerTrainer&&) noexcept = default;

uint64_t TokenizerTrainer::bytes() const { return impl_->bytes; }
bool TokenizerTrainer::full() const { return impl_->full; }

bool TokenizerTrainer::add_text(std::string_view text) {
  Impl& m = *impl_;
  const uint64_t cap = m.opts.max_bytes;
  if (m.full) return false;
  if (cap > 0 && text.size() > cap - m.bytes) {
    // Up to the last line end within the limit (the limit itself when a line is longer).
    const size_t room = size_t(cap - m.bytes);
    const size_t nl = text.substr(0, room).rfind('\n');
    text = text.substr(0, nl == std::string_view::npos ? room : nl + 1);
    m.full = true;
  }
  m.bytes += text.size();
  m.add_block(text);
  if (cap > 0 && m.bytes >= cap) m.full = true;
  return !m.full;
}

void TokenizerTrainer::add_file(const std::string& path, const TrainProgressFn& progress, uint64_t done_before, uint64_t total) {
  if (impl_->full) return;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a directory, not a text file");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) fail(path, ": cannot open: ", std::strerror(errno));
  std::string buf, carry;
  buf.resize(kBlockBytes);
  uint64_t done = 0;
  for (;;) {
    const size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
    if (n == 0) {
      if (std::ferror(f.get())) fail(path, ": read error: ", std::strerror(errno));
      break;
    }
    done += n;
    carry.append(buf.data(), n);
    // Whole lines only; a line longer than a block is cut (it is cut into words anyway).
    const size_t nl = carry.rfind('\n');
    const size_t take = nl != std::string::npos ? nl + 1 : (carry.size() >= kBlockBytes ? carry.size() : 0);
    if (take > 0) {
      const bool more = add_text(std::string_view(carry).substr(0, take));
      carry.erase(0, take);
      if (!more) return;
    }
    if (progress) progress(TrainProgress{"reading", done_before + done, total});
  }
  if (!carry.empty()) add_text(carry);
}

TrainedTokenizer TokenizerTrainer::train(const TrainProgressFn& progress) { return impl_->train(progress); }

TrainedTokenizer TokenizerTrainer::Impl::train(const TrainProgressFn& progress) {
  if (words.empty()) fail("no text to train on: the input is empty");
  const bool sp = opts.type == TokenizerTrainType::SentencePieceBpe;
  const std::vector<std::string>& specials = trained_special_tokens(opts.type);
  TrainedTokenizer out;
  out.type = opts.type;
  out.bytes = bytes;
  out.words = n_words;
  out.distinct_words = words.size();

  // Sorted, so that nothing depends on hash order.
  std::vector<std::pair<std::string_view, int64_t>> sorted(words.begin(), words.end());
  std::sort(sorted.begin(), sorted.end());

  MergeVocab vocab;
  MergeCorpus corpus;
  corpus.words.reserve(sorted.size());
  corpus.counts.reserve(sorted.size());
  size_t target = size_t(opts.vocab_size);
  if (sp) {
    for (const std::string& s : specials) vocab.add(s), vocab.reserved.insert(s);
    for (int b = 0; b < 256; ++b) vocab.add(byte_token(b)), vocab.reserved.insert(byte_token(b));
    // The alphabet: "▁", then characters by frequency (ties by their bytes) while they are
    // frequent enough and fit; the others are left to byte fallback.
    std::map<std::string_view, int64_t> chars;
    for (auto& [w, c] : sorted)
      for (size_t i = 0; i < w.size();) {
        const size_t n = std::max<size_t>(1, utf8::valid_length(w, i));
        chars[w.substr(i, n)] += c;
        i += n;
      }
    out.characters = chars.size();
    std::vector<std::pair<std::string_view, int64_t>> by_count(chars.begin(), chars.end());
    std::stable_sort(by_count.begin(), by_count.end(), [](auto& x, auto& y) { return x.second > y.second; });
    vocab.add(kSpace);
    for (auto& [ch, c] : by_count)
      if (c >= opts.min_frequency && vocab.texts.size() < target) vocab.add(std::string(ch));
    out.characters_kept = vocab.texts.size() - specials.size() - 256;
    for (auto& [w, c] : sorted) {
      std::vector<int> syms;
      for (size_t i = 0; i < w.size();) {
        const size_t n = std::max<size_t>(1, utf8::valid_length(w, i));
        auto it = vocab.ids.find(std::string(w.substr(i, n)));
        syms.push_back(it == vocab.ids.end() ? -1 : it->second);
        i += n;
      }
      corpus.words.push_back(std::move(syms));
      corpus.counts.push_back(c);
    }
  } else {
    for (int b = 0; b < 256; ++b) vocab.add(byte_level::byte_to_text(uint8_t(b)));
    for (const std::string& s : specials) vocab.reserved.insert(s);
    target -= specials.size();  // they come last, as in Llama 3
    for (auto& [w, c] : sorted) {
      std::vector<int> syms(w.size());
      for (size_t i = 0; i < w.size(); ++i) syms[i] = uint8_t(w[i]);
      corpus.words.push_back(std::move(syms));
      corpus.counts.push_back(c);
    }
  }
  sorted.clear();
  words.clear();  // no longer needed: frees the memory before merging

  auto report = [&](size_t n) {
    if (progress) progress(TrainProgress{"merging", uint64_t(n + (sp ? 0 : specials.size())), uint64_t(opts.vocab_size)});
  };
  const auto merges = learn_bpe_merges(corpus, vocab, target, report);
  if (!sp)
    for (const std::string& s : specials) vocab.add(s);

  out.vocab = std::move(vocab.texts);
  for (auto [a, b] : merges) out.merges.emplace_back(out.vocab[size_t(a)], out.vocab[size_t(b)]);
  auto id_of = [&](const std::string& s) { return int(std::find(out.vocab.begin(), out.vocab.end(), s) - out.vocab.begin()); };
  for (const std::string& s : specials) out.special_ids.push_back(id_of(s));
  if (sp) {
    out.unk_id = id_of("<unk>"), out.bos_id = id_of("<s>"), out.eos_id = id_of("</s>");
  } else {
    out.bos_id = id_of("<|begin_of_text|>"), out.eos_id = id_of("<|end_of_text|>");
  }
  return out;
}

TrainedTokenizer train_tokenizer(const std::vector<std::string>& files, const TokenizerTrainOptions& opts,
                                 const TrainProgressFn& progress) {
  if (files.empty()) fail("no input files given");
  TokenizerTrainer t(opts);
  uint64_t total = 0;
  for (const std::string& f : files) {
    std::error_code ec;
    if (!std::filesystem::exists(f, ec)) fail(f, ": no such file");
    if (std::filesystem::is_directory(f, ec)) fail(f, ": is a directory, not a text file");
    const auto n = std::filesystem::file_size(f, ec);
    if (!ec) total += n;
  }
  if (opts.max_bytes > 0) total = std::min<uint64_t>(total, opts.max_bytes);
  for (const std::string& f : files) {
    const uint64_t before = t.bytes();
    t.add_file(f, progress, before, total);
    if (t.full()) break;
  }
  if (t.bytes() == 0) fail("no text to train on: ", files.size() == 1 ? files[0] + " is empty" : "the input files are empty");
  return t.train(progress);
}

}  // namespace camelid
