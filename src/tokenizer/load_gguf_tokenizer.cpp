// GGUF metadata (the tokenizer.* keys llama.cpp's converters write) -> TokenizerSpec, read as
// llama.cpp reads them (src/llama-vocab.cpp): model "llama" is SentencePiece BPE ranked by piece
// scores, "gpt2" byte-level BPE with ranked merges and a pre-tokenizer named by
// tokenizer.ggml.pre. The file may come from a stranger: every key is type-checked, every id
// range-checked against the vocabulary, array lengths must agree, and anything camelid cannot
// run the way the reference does is an error naming the file and the key.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "core/gguf.h"
#include "tokenizer/loader_util.h"
#include "tokenizer/loaders.h"
#include "tokenizer/utf8.h"

namespace camelid {
namespace {

using tok::quote;

constexpr const char* kModel = "tokenizer.ggml.model";
constexpr const char* kPre = "tokenizer.ggml.pre";
constexpr const char* kTokens = "tokenizer.ggml.tokens";
constexpr const char* kScores = "tokenizer.ggml.scores";
constexpr const char* kTokenType = "tokenizer.ggml.token_type";
constexpr const char* kMerges = "tokenizer.ggml.merges";
constexpr const char* kBosId = "tokenizer.ggml.bos_token_id";
constexpr const char* kEosId = "tokenizer.ggml.eos_token_id";
constexpr const char* kUnkId = "tokenizer.ggml.unknown_token_id";
constexpr const char* kPadId = "tokenizer.ggml.padding_token_id";
constexpr const char* kEotId = "tokenizer.ggml.eot_token_id";
constexpr const char* kEomId = "tokenizer.ggml.eom_token_id";
constexpr const char* kAddBos = "tokenizer.ggml.add_bos_token";
constexpr const char* kAddEos = "tokenizer.ggml.add_eos_token";
constexpr const char* kAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
constexpr const char* kRemoveExtraWs = "tokenizer.ggml.remove_extra_whitespaces";
constexpr const char* kChatTemplate = "tokenizer.chat_template";

// tokenizer.ggml.pre values camelid runs, with what llama.cpp does for each.
struct PreTokenizer {
  const char* name;
  const char* pattern;
  bool ignore_merges;  // a pre-token that is a whole vocabulary entry is used as is
  bool add_bos;        // default of tokenizer.ggml.add_bos_token
};
constexpr PreTokenizer kPreTokenizers[] = {
    {"llama-bpe", tok::kLlama3Pattern, true, true},
    {"llama3", tok::kLlama3Pattern, true, true},
    {"llama-v3", tok::kLlama3Pattern, true, true},
    {"default", tok::kGpt2Pattern, false, false},
    {"gpt-2", tok::kGpt2Pattern, false, false},
};

std::string supported_pre_tokenizers() {
  std::string out;
  for (const PreTokenizer& p : kPreTokenizers) out += (out.empty() ? "" : ", ") + quote(p.name);
  return out;
}

const PreTokenizer& pre_tokenizer(const gguf::File& f) {
  // Files converted before the key existed have none: llama.cpp then uses "default".
  const std::string name = f.get_string(kPre, "default");
  for (const PreTokenizer& p : kPreTokenizers)
    if (name == p.name) return p;
  fail(f.source(), ": ", kPre, " ", quote(name), " is not supported (supported: ", supported_pre_tokenizers(), ")");
}

bool is_byte_piece(std::string_view t) {
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::isxdigit(uint8_t(t[3])) &&
         std::isxdigit(uint8_t(t[4]));
}

TokenType token_type(const gguf::File& f, size_t i, int64_t t) {
  switch (t) {
    case 1: return TokenType::Normal;
    case 2: return TokenType::Unknown;
    case 3: return TokenType::Control;
    case 4: return TokenType::UserDefined;
    case 5: return TokenType::Unused;
    case 6: return TokenType::Byte;
  }
  fail(f.source(), ": ", kTokenType, "[", i, "] is ", t,
       " (token types are 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte)");
}

// An optional token id: -1 when the key is absent, else an integer naming a token.
int token_id(const gguf::File& f, const char* key, size_t n_tokens) {
  return f.find(key) ? int(f.get_int(key, 0, int64_t(n_tokens) - 1)) : -1;  // type and range checked by the reader
}

// tokenizer.ggml.tokens: non-empty, distinct, at most kMaxVocab of them.
const std::vector<std::string>& read_tokens(const gguf::File& f) {
  const std::vector<std::string>& tokens = f.get_strings(kTokens);
  if (tokens.empty()) fail(f.source(), ": ", kTokens, " is empty");
  if (tokens.size() > size_t(tok::kMaxVocab)) fail(f.source(), ": ", kTokens, " has ", tokens.size(), " tokens (at most ", tok::kMaxVocab, ")");
  return tokens;
}

using Index = std::unordered_map<std::string_view, int>;

Index index_tokens(const gguf::File& f, const std::vector<std::string>& tokens) {
  Index ids;
  ids.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].empty()) fail(f.source(), ": ", kTokens, "[", i, "] is empty");
    auto [it, fresh] = ids.emplace(tokens[i], int(i));
    if (!fresh) fail(f.source(), ": ", kTokens, " has ", quote(tokens[i]), " twice (ids ", it->second, " and ", i, ")");
  }
  return ids;
}

// tokenizer.ggml.token_type, one per token; absent: all normal (pieces <0xHH> are bytes when
// `bytes`). Byte tokens of a SentencePiece vocabulary must be <0xHH>.
std::vector<TokenType> read_types(const gguf::File& f, const std::vector<std::string>& tokens, bool bytes) {
  std::vector<TokenType> types(tokens.size(), TokenType::Normal);
  if (!f.find(kTokenType)) {
    if (bytes)
      for (size_t i = 0; i < tokens.size(); ++i)
        if (is_byte_piece(tokens[i])) types[i] = TokenType::Byte;
    return types;
  }
  const std::vector<int64_t>& t = f.get_ints(kTokenType);
  if (t.size() != tokens.size()) fail(f.source(), ": ", kTokenType, " has ", t.size(), " entries but ", kTokens, " has ", tokens.size());
  for (size_t i = 0; i < t.size(); ++i) {
    types[i] = token_type(f, i, t[i]);
    if (bytes && types[i] == TokenType::Byte && !is_byte_piece(tokens[i]))
      fail(f.source(), ": ", kTokenType, "[", i, "] is byte but token ", quote(tokens[i]), " is not <0xHH>");
  }
  return types;
}

// tokenizer.ggml.scores, one per token: float32 (llama.cpp also takes int32), no NaN.
std::vector<float> read_scores(const gguf::File& f, size_t n_tokens) {
  const gguf::Value* v = f.find(kScores);
  if (!v) fail(f.source(), ": ", kScores, " is missing (a SentencePiece vocabulary is ranked by its scores)");
  std::vector<float> scores;
  if (v->type == gguf::ValueType::Array && v->array_size() > 0 && v->elem != gguf::ValueType::Bool &&
      v->elem != gguf::ValueType::F32 && v->elem != gguf::ValueType::F64) {
    for (int64_t x : f.get_ints(kScores)) scores.push_back(float(x));  // throws on a non-integer kind
  } else {
    for (double x : f.get_floats(kScores)) scores.push_back(float(x));
  }
  if (scores.size() != n_tokens) fail(f.source(), ": ", kScores, " has ", scores.size(), " entries but ", kTokens, " has ", n_tokens);
  for (size_t i = 0; i < scores.size(); ++i)
    if (std::isnan(scores[i])) fail(f.source(), ": ", kScores, "[", i, "] is NaN");
  return scores;
}

// tokenizer.ggml.merges: "left right" strings, each part and their concatenation a token.
std::vector<std::pair<int, int>> read_merges(const gguf::File& f, const Index& ids) {
  const std::vector<std::string>& merges = f.get_strings(kMerges);
  std::vector<std::pair<int, int>> out;
  out.reserve(merges.size());
  std::string joined;
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string_view m = merges[i];
    const size_t sp = m.find(' ', 1);  // a merge part is never empty (llama.cpp splits the same way)
    if (sp == std::string_view::npos || sp + 1 >= m.size())
      fail(f.source(), ": ", kMerges, "[", i, "] ", quote(m), " is not \"left right\"");
    const std::string_view a = m.substr(0, sp), b = m.substr(sp + 1);
    joined.assign(a).append(b);
    auto ia = ids.find(a), ib = ids.find(b), ij = ids.find(joined);
    if (ia == ids.end() || ib == ids.end() || ij == ids.end())
      fail(f.source(), ": ", kMerges, "[", i, "] ", quote(m), " uses ", quote(ia == ids.end() ? a : ib == ids.end() ? b : std::string_view(joined)),
           ", which is not in ", kTokens);
    out.emplace_back(ia->second, ib->second);
  }
  return out;
}

// Control and unknown tokens are matched in text only when special parsing is on, user-defined
// ones always (llama.cpp's tokenizer_st_partition; SentencePiece does the same).
void collect_added(const gguf::File& f, TokenizerSpec& s) {
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    const TokenType t = s.types[i];
    if (t != TokenType::Control && t != TokenType::UserDefined && t != TokenType::Unknown) continue;
    // Text is split where these match: they must be short and must not cut a character in two.
    if (s.tokens[i].size() > tok::kMaxAddedTokenBytes)
      fail(f.source(), ": ", kTokens, "[", i, "] is a special token of ", s.tokens[i].size(), " bytes (at most ", tok::kMaxAddedTokenBytes, ")");
    if (!utf8::is_valid(s.tokens[i])) fail(f.source(), ": ", kTokens, "[", i, "] (", quote(s.tokens[i]), ") is a special token but not valid UTF-8");
    s.added.push_back(AddedToken{int(i), s.tokens[i], t != TokenType::UserDefined, false, false});
  }
}

// BOS/EOS/UNK, the tokens added around a text, and the other ids that end generation.
void read_special(const gguf::File& f, TokenizerSpec& s, bool sentencepiece, bool add_bos_default) {
  const size_t n = s.tokens.size();
  s.bos_id = token_id(f, kBosId, n);
  s.eos_id = token_id(f, kEosId, n);
  s.unk_id = token_id(f, kUnkId, n);
  token_id(f, kPadId, n);  // unused here, but a bad id is a bad file
  if (sentencepiece) {
    // llama.cpp's defaults for a SentencePiece vocabulary, where the vocabulary has them.
    if (!f.find(kBosId) && n > 1) s.bos_id = 1;
    if (!f.find(kEosId) && n > 2) s.eos_id = 2;
    if (!f.find(kUnkId)) s.unk_id = 0;
  }
  for (const char* key : {kEotId, kEomId}) {
    const int id = token_id(f, key, n);
    if (id >= 0 && id != s.eos_id && std::find(s.more_eos_ids.begin(), s.more_eos_ids.end(), id) == s.more_eos_ids.end())
      s.more_eos_ids.push_back(id);
  }
  // Fill-in-the-middle ids: older files say prefix/suffix/middle, newer ones fim_pre/suf/mid.
  auto either = [&](const char* a, const char* b) {
    const int id = token_id(f, a, n);
    return id >= 0 ? id : token_id(f, b, n);
  };
  s.fim_prefix_id = either("tokenizer.ggml.prefix_token_id", "tokenizer.ggml.fim_pre_token_id");
  s.fim_suffix_id = either("tokenizer.ggml.suffix_token_id", "tokenizer.ggml.fim_suf_token_id");
  s.fim_middle_id = either("tokenizer.ggml.middle_token_id", "tokenizer.ggml.fim_mid_token_id");
  s.fim_eot_id = token_id(f, kEotId, n);
  if (f.get_bool(kAddBos, add_bos_default)) {
    if (s.bos_id < 0) fail(f.source(), ": ", kAddBos, " is true but ", kBosId, " is not set");
    s.prefix_ids = {s.bos_id};
  }
  if (f.get_bool(kAddEos, false)) {
    if (s.eos_id < 0) fail(f.source(), ": ", kAddEos, " is true but ", kEosId, " is not set");
    s.suffix_ids = {s.eos_id};
  }
}

void read_sentencepiece(const gguf::File& f, TokenizerSpec& s) {
  s.kind = TokenizerSpec::Kind::SentencePieceBpe;
  s.scores = read_scores(f, s.tokens.size());  // merges stay empty: ranked by score
  s.byte_fallback = true;
  s.escape_spaces = true;
  const bool prefix = f.get_bool(kAddSpacePrefix, true);
  s.dummy_prefix = prefix ? TokenizerSpec::Prefix::Always : TokenizerSpec::Prefix::Never;
  s.strip_leading_space = prefix;
  if (f.get_bool(kRemoveExtraWs, false)) fail(f.source(), ": ", kRemoveExtraWs, " = true is not supported");
  read_special(f, s, true, true);
}

void read_byte_level(const gguf::File& f, TokenizerSpec& s, const Index& ids) {
  const PreTokenizer& pre = pre_tokenizer(f);
  s.kind = TokenizerSpec::Kind::ByteLevelBpe;
  s.byte_fallback = false;
  s.strip_leading_space = false;
  s.split_patterns = {pre.pattern};
  s.ignore_merges = pre.ignore_merges;
  if (f.find(kScores)) read_scores(f, s.tokens.size());  // not used, but must fit the vocabulary
  s.merges = read_merges(f, ids);
  read_special(f, s, false, pre.add_bos);
}

}  // namespace

TokenizerSpec tokenizer_spec_from_gguf(const gguf::File& f) {
  const std::string model = f.get_string(kModel);
  const bool sentencepiece = model == "llama";
  if (!sentencepiece && model != "gpt2")
    fail(f.source(), ": ", kModel, " ", quote(model), " is not supported (supported: 'llama' (SentencePiece BPE), 'gpt2' (byte-level BPE))");
  TokenizerSpec s;
  s.source = f.source();
  const std::vector<std::string>& tokens = read_tokens(f);
  const Index ids = index_tokens(f, tokens);
  s.types = read_types(f, tokens, sentencepiece);
  s.tokens = tokens;
  if (sentencepiece) read_sentencepiece(f, s);
  else read_byte_level(f, s, ids);
  collect_added(f, s);
  return s;
}

std::vector<int> end_of_turn_ids_from_gguf(const gguf::File& f) {
  const size_t n = read_tokens(f).size();
  std::vector<int> out;
  for (const char* key : {kEosId, kEotId, kEomId}) {
    const int id = token_id(f, key, n);
    if (id >= 0 && std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
  return out;
}

std::string chat_template_from_gguf(const gguf::File& f) { return f.get_string(kChatTemplate, ""); }

}  // namespace camelid
