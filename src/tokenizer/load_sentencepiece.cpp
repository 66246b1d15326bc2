// SentencePiece's tokenizer.model is a protobuf ModelProto; the few fields a BPE tokenizer needs
// are read with a minimal wire-format reader, so no protobuf library is required. The file may
// come from a stranger: every length is checked against the bytes left, ids against the pieces
// read, and pieces must be non-empty, distinct, with real scores and known types.
#include <cctype>
#include <cmath>
#include <cstring>
#include <string_view>
#include <unordered_set>

#include "core/error.h"
#include "core/mmap_file.h"
#include "tokenizer/loader_util.h"
#include "tokenizer/loaders.h"

namespace camelid {
namespace {

// ModelProto field numbers (sentencepiece_model.proto).
enum : uint32_t { kPieces = 1, kTrainerSpec = 2, kNormalizerSpec = 3 };
enum : uint32_t { kPiece = 1, kScore = 2, kType = 3 };                             // SentencePiece
enum : uint32_t { kSpModelType = 3, kSpByteFallback = 35, kSpUnkId = 40, kSpBosId = 41, kSpEosId = 42 };  // TrainerSpec
enum : uint32_t { kSpNormName = 1, kSpAddDummyPrefix = 3, kSpRemoveExtraWs = 4, kSpEscapeWs = 5 };      // NormalizerSpec

class Reader {
 public:
  Reader(const std::string& file, const uint8_t* p, size_t n) : file_(file), p_(p), end_(p + n) {}
  bool done() const { return p_ >= end_; }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail(file_, ": truncated protobuf varint");
      const uint8_t b = *p_++;
      if (shift == 63 && b > 1) break;  // more than 64 bits
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(file_, ": malformed protobuf varint");
  }
  // Next field: its number and wire type.
  std::pair<uint32_t, uint32_t> tag() {
    const uint64_t t = varint();
    return {uint32_t(t >> 3), uint32_t(t & 7)};
  }
  Reader sub() {
    const uint64_t n = varint();
    if (n > uint64_t(end_ - p_)) fail(file_, ": protobuf field length ", n, " runs past the end of the file");
    Reader r(file_, p_, size_t(n));
    p_ += n;
    return r;
  }
  std::string bytes() {
    Reader r = sub();
    return std::string(reinterpret_cast<const char*>(r.p_), size_t(r.end_ - r.p_));
  }
  float fixed32f() {
    if (end_ - p_ < 4) fail(file_, ": truncated protobuf float");
    float f;
    std::memcpy(&f, p_, 4);
    p_ += 4;
    return f;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1: advance(8); break;
      case 2: sub(); break;
      case 5: advance(4); break;
      default: fail(file_, ": unsupported protobuf wire type ", wire, " (not a SentencePiece model?)");
    }
  }

 private:
  void advance(size_t n) {
    if (size_t(end_ - p_) < n) fail(file_, ": truncated protobuf field");
    p_ += n;
  }
  const std::string& file_;
  const uint8_t* p_;
  const uint8_t* end_;
};

TokenType piece_type(const std::string& file, uint64_t t) {
  switch (t) {
    case 1: return TokenType::Normal;
    case 2: return TokenType::Unknown;
    case 3: return TokenType::Control;
    case 4: return TokenType::UserDefined;
    case 5: return TokenType::Unused;
    case 6: return TokenType::Byte;
  }
  fail(file, ": unknown SentencePiece piece type ", t);
}

// An int32 field (trainer_spec.unk_id etc.): protobuf sends negative values sign-extended to 64
// bits and readers keep the low 32. -1 means "none"; anything else must name a piece.
int piece_id(const std::string& file, const char* field, uint64_t v, size_t n) {
  const int id = int(int32_t(uint32_t(v)));
  if (id < -1 || (id >= 0 && size_t(id) >= n))
    fail(file, ": trainer_spec.", field, " ", id, " is out of range (", n, " pieces)");
  return id;
}

}  // namespace

TokenizerSpec parse_sentencepiece_model(const uint8_t* data, size_t size, const std::string& path) {
  Reader r(path, data, size);
  TokenizerSpec s;
  s.kind = TokenizerSpec::Kind::SentencePieceBpe;
  s.source = path;
  uint64_t model_type = 1;  // proto default: UNIGRAM
  uint64_t unk = 0, bos = 1, eos = 2;
  std::string norm_name = "nmt_nfkc";
  bool add_dummy_prefix = true, remove_extra_ws = true;
  while (!r.done()) {
    auto [field, wire] = r.tag();
    if (field == kPieces && wire == 2) {
      Reader p = r.sub();
      std::string piece;
      float score = 0;
      TokenType type = TokenType::Normal;
      while (!p.done()) {
        auto [pf, pw] = p.tag();
        if (pf == kPiece && pw == 2) piece = p.bytes();
        else if (pf == kScore && pw == 5) score = p.fixed32f();
        else if (pf == kType && pw == 0) type = piece_type(path, p.varint());
        else p.skip(pw);
      }
      const size_t i = s.tokens.size();
      if (i >= size_t(tok::kMaxVocab)) fail(path, ": more than ", tok::kMaxVocab, " pieces");
      if (piece.empty()) fail(path, ": piece ", i, " is empty");
      // NaN would break the score order merges are ranked by.
      if (std::isnan(score)) fail(path, ": piece ", i, " (", tok::quote(piece), ") has score NaN");
      if (type == TokenType::Byte && !(piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && piece[5] == '>' &&
                                       std::isxdigit(uint8_t(piece[3])) && std::isxdigit(uint8_t(piece[4]))))
        fail(path, ": piece ", i, " (", tok::quote(piece), ") has type BYTE but is not <0xHH>");
      s.tokens.push_back(std::move(piece));
      s.scores.push_back(score);
      s.types.push_back(type);
    } else if (field == kTrainerSpec && wire == 2) {
      Reader t = r.sub();
      while (!t.done()) {
        auto [tf, tw] = t.tag();
        if (tw != 0) { t.skip(tw); continue; }
        const uint64_t v = t.varint();
        if (tf == kSpModelType) model_type = v;
        else if (tf == kSpByteFallback) s.byte_fallback = v != 0;
        else if (tf == kSpUnkId) unk = v;
        else if (tf == kSpBosId) bos = v;
        else if (tf == kSpEosId) eos = v;
      }
    } else if (field == kNormalizerSpec && wire == 2) {
      Reader n = r.sub();
      while (!n.done()) {
        auto [nf, nw] = n.tag();
        if (nf == kSpNormName && nw == 2) norm_name = n.bytes();
        else if (nf == kSpAddDummyPrefix && nw == 0) add_dummy_prefix = n.varint() != 0;
        else if (nf == kSpRemoveExtraWs && nw == 0) remove_extra_ws = n.varint() != 0;
        else if (nf == kSpEscapeWs && nw == 0) s.escape_spaces = n.varint() != 0;
        else n.skip(nw);
      }
    } else {
      r.skip(wire);
    }
  }
  if (s.tokens.empty()) fail(path, ": no pieces (not a SentencePiece model?)");
  if (model_type != 2) fail(path, ": trainer_spec.model_type ", model_type, " is not supported (only BPE = 2, as Llama uses)");
  if (norm_name != "identity") fail(path, ": normalizer ", tok::quote(norm_name), " is not supported (Llama models use 'identity')");
  if (remove_extra_ws) fail(path, ": normalizer_spec.remove_extra_whitespaces is not supported");
  s.dummy_prefix = add_dummy_prefix ? TokenizerSpec::Prefix::Always : TokenizerSpec::Prefix::Never;
  s.strip_leading_space = add_dummy_prefix;
  const int n = int(s.tokens.size());
  {
    std::unordered_set<std::string_view> seen;
    seen.reserve(s.tokens.size());
    for (int i = 0; i < n; ++i)
      if (!seen.insert(s.tokens[size_t(i)]).second) fail(path, ": piece ", i, " (", tok::quote(s.tokens[size_t(i)]), ") is defined twice");
  }
  s.unk_id = piece_id(path, "unk_id", unk, s.tokens.size());
  // SentencePiece adds BOS (not EOS) by default; tokenizer_config.json may override this.
  s.bos_id = piece_id(path, "bos_id", bos, s.tokens.size());
  s.eos_id = piece_id(path, "eos_id", eos, s.tokens.size());
  if (s.bos_id >= 0) s.prefix_ids = {s.bos_id};
  // Control and unknown pieces become text only when special parsing is on; user-defined pieces
  // are always matched whole, as SentencePiece does.
  for (int i = 0; i < n; ++i) {
    const TokenType t = s.types[i];
    if (t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown)
      s.added.push_back(AddedToken{i, s.tokens[i], t != TokenType::UserDefined, false, false});
  }
  return s;
}

TokenizerSpec load_sentencepiece_model(const std::string& path) {
  MappedFile f(path);
  if (f.size() > tok::kMaxTokenizerFile) fail(path, ": file is larger than ", tok::kMaxTokenizerFile >> 20, " MiB (not a tokenizer.model?)");
  return parse_sentencepiece_model(f.data(), f.size(), path);
}

}  // namespace camelid
