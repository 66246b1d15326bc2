#pragma once
// Training a BPE tokenizer from text: SentencePiece-style (Llama 2: "▁" for spaces, a dummy
// prefix, single characters as the alphabet, byte fallback for rare characters) or byte-level
// (Llama 3: a regex pre-tokenizer, the 256 bytes as the alphabet). Words are counted once; then
// the most frequent adjacent pair is merged again and again (ties: the pair whose left, then
// right, text sorts first bytewise), with pair counts updated incrementally, until the vocabulary
// has the size asked for or no pair is left. The result is written by tokenizer_json_writer.h.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace camelid {

enum class TokenizerTrainType { SentencePieceBpe, ByteLevelBpe };

struct TokenizerTrainOptions {
  TokenizerTrainType type = TokenizerTrainType::SentencePieceBpe;
  int64_t vocab_size = 8000;    // everything: special tokens, byte tokens, characters, merges
  int64_t min_frequency = 2;    // SentencePiece: rarer characters are left to byte fallback
  uint64_t max_bytes = 0;       // input read at most (0: all of it)
};

struct TrainedTokenizer {
  TokenizerTrainType type = TokenizerTrainType::SentencePieceBpe;
  std::vector<std::string> vocab;  // id -> token text as tokenizer.json stores it
  std::vector<std::pair<std::string, std::string>> merges;  // rank order
  std::vector<int> special_ids;    // added tokens (ascending)
  int unk_id = -1, bos_id = -1, eos_id = -1;
  // Statistics for the summary.
  uint64_t bytes = 0;           // input bytes used
  uint64_t words = 0;           // words (pre-tokens) counted, with repeats
  uint64_t distinct_words = 0;
  uint64_t characters = 0;      // SentencePiece: distinct characters seen
  uint64_t characters_kept = 0; // ... of which have their own token
};

struct TrainProgress {
  const char* phase;     // "reading" (done/total: bytes) or "merging" (done/total: vocabulary)
  uint64_t done, total;
};
using TrainProgressFn = std::function<void(const TrainProgress&)>;

inline constexpr int64_t kMaxTrainVocab = 1'000'000;

class TokenizerTrainer {
 public:
  // Throws Error naming the flag (--vocab-size, --min-frequency) on options out of range.
  explicit TokenizerTrainer(const TokenizerTrainOptions& opts);
  ~TokenizerTrainer();
  TokenizerTrainer(TokenizerTrainer&&) noexcept;

  // Text of one document or a block of whole lines (any bytes: invalid UTF-8 becomes U+FFFD).
  // Stops taking text once max_bytes is reached (returns false then).
  bool add_text(std::string_view text);
  // Reads the file in blocks of whole lines; Error naming the file if it cannot be read.
  // `total` is only for progress reports (the bytes of all files).
  void add_file(const std::string& path, const TrainProgressFn& progress = {}, uint64_t done_before = 0, uint64_t total = 0);
  uint64_t bytes() const;
  bool full() const;  // max_bytes reached

  // Learns the merges. Error if no text was added (or it held no characters at all).
  TrainedTokenizer train(const TrainProgressFn& progress = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The special tokens each type defines, in id order of the added tokens.
const std::vector<std::string>& trained_special_tokens(TokenizerTrainType type);
// Smallest vocabulary each type accepts.
int64_t min_train_vocab(TokenizerTrainType type);

// Convenience: every file in turn (Error naming a file that is missing, unreadable or a
// directory; Error if all of them together hold no text).
TrainedTokenizer train_tokenizer(const std::vector<std::string>& files, const TokenizerTrainOptions& opts,
                                 const TrainProgressFn& progress = {});

}  // namespace camelid
