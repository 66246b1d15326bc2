#pragma once
// Text <-> token ids for the Llama family: SentencePiece-style BPE (Llama 2, Code Llama) and
// byte-level BPE (Llama 3.x), loaded from tokenizer.json, tokenizer.model or GGUF metadata.
// Immutable once built, so one instance serves any number of threads.
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/regex_split.h"
#include "tokenizer/tokenizer_spec.h"

namespace camelid {

struct TokenizerConfig;

class Tokenizer {
 public:
  // A model directory (tokenizer.json preferred over tokenizer.model, plus tokenizer_config.json
  // when present), one of those files, or a GGUF file (its tokenizer.* metadata). Throws Error
  // naming the file.
  static std::unique_ptr<Tokenizer> load(const std::string& path);
  static bool available(const std::string& path);  // whether load() would find a tokenizer file
  // Checks everything the spec refers to (ids, merges, scores) and throws Error naming
  // spec.source on what does not fit; with a config, its BOS/EOS and added tokens apply.
  explicit Tokenizer(TokenizerSpec spec);
  Tokenizer(TokenizerSpec spec, const TokenizerConfig& cfg);

  // add_special: the BOS/EOS the tokenizer's config asks for. parse_special: whether the text of
  // a special token (e.g. "<|eot_id|>") becomes that token (Hugging Face's default) or stays
  // plain text (the safe choice for untrusted input). Invalid UTF-8 is replaced by U+FFFD first.
  std::vector<int> encode(std::string_view text, bool add_special = true, bool parse_special = false) const;
  struct Segment {
    std::string text;
    bool parse_special;
  };
  // Concatenated segments with their own special-token rule (chat prompts: template text parsed,
  // message contents not). Segment boundaries are token boundaries.
  std::vector<int> encode_segments(const std::vector<Segment>& segments, bool add_special) const;
  // Text that continues earlier tokens (Code Llama infill's suffix): no BOS/EOS and no
  // SentencePiece dummy-prefix space; special-token text stays plain text.
  std::vector<int> encode_continuation(std::string_view text) const;

  // ids -> text as the reference decoders do (invalid byte sequences become U+FFFD).
  // `continuation`: the ids follow earlier output, so the first space is not stripped.
  // An id outside the vocabulary is an Error.
  std::string decode(const std::vector<int>& ids, bool skip_special = false, bool continuation = false) const;

  int vocab_size() const { return int(spec_.tokens.size()); }
  const std::string& token_text(int id) const;  // as stored in the vocabulary; throws if out of range
  int token_id(std::string_view text) const;    // -1 if the vocabulary has no such token
  // The bytes token id adds to decoded output (may be part of a UTF-8 character); throws if out of range.
  const std::string& token_bytes(int id) const;
  bool is_special(int id) const;
  int bos_id() const { return spec_.bos_id; }
  const std::vector<int>& eos_ids() const { return eos_ids_; }
  bool adds_bos() const { return !spec_.prefix_ids.empty(); }
  bool contains_special_text(std::string_view text) const;  // any special token's content in text
  const TokenizerSpec& spec() const { return spec_; }

 private:
  friend class StreamDecoder;
  struct Cache;
  void apply_config(const TokenizerConfig& cfg);
  std::vector<int> encode_segments_at(const std::vector<Segment>& segments, bool add_special, bool at_start) const;
  void encode_text(std::string_view text, bool first, Cache& cache, std::vector<int>& out, bool no_prefix = false) const;
  void encode_sentencepiece(std::string_view text, bool first, Cache& cache, std::vector<int>& out, bool no_prefix = false) const;
  void encode_byte_level(std::string_view text, Cache& cache, std::vector<int>& out) const;
  void emit_word(std::string_view word, std::vector<int>& ids, std::vector<int>& lens, std::vector<int>& out) const;
  std::string decode_bytes(const std::vector<int>& ids, bool skip_special, bool continuation, bool sanitize) const;

  struct Hash {  // lets the maps be searched with a string_view, without a copy
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using TextMap = std::unordered_map<std::string, int, Hash, std::equal_to<>>;

  TokenizerSpec spec_;
  TextMap ids_;      // vocabulary text -> id
  TextMap raw_ids_;  // byte-level: raw bytes -> id
  std::vector<std::string> raw_text_;             // id -> bytes it stands for (decoding)
  int byte_ids_[256];                             // byte fallback / byte-level unit ids
  BpeMerges merges_;
  std::vector<RegexSplit> splits_;
  bool split_words_ = false;                      // SentencePiece: words can be merged one by one
  AddedTokenMatcher added_;
  std::vector<int> eos_ids_;
};

// Incremental decoding for streamed generation: push() returns the text completed by each new
// token, never half a UTF-8 character, and the pieces concatenate to decode(all ids).
class StreamDecoder {
 public:
  // continuation: the text continues earlier text, so a SentencePiece word's leading space is kept
  // even on the first token (as decode(ids, ..., true)).
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = true, bool continuation = false)
      : tok_(&tok), skip_special_(skip_special), started_(continuation) {}
  std::string push(int id);  // Error for an id outside the vocabulary (the decoder stays usable)
  std::string flush();  // whatever is held back (an unfinished character becomes U+FFFD)

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  bool started_ = false;
  std::vector<int> pending_;
};

}  // namespace camelid
