// Hugging Face tokenizer.json -> TokenizerSpec. Only the pipelines the Llama family uses are
// accepted (BPE model; Prepend/Replace normalizers or Metaspace for SentencePiece-style
// vocabularies; Split + ByteLevel for byte-level ones); anything else is a clear error rather
// than a tokenizer that silently differs from the reference. The file may come from a stranger:
// every field is type-checked, every id range-checked against what the file really holds, and
// nested Sequences are bounded.
#include <algorithm>
#include <cctype>
#include <unordered_map>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/loader_util.h"
#include "tokenizer/loaders.h"

namespace camelid {
namespace {

using tok::json;
using tok::quote;
using tok::kSpace;
constexpr size_t kMaxTemplateIds = 64;  // special ids a post-processor adds (real ones: 1 or 2)
constexpr size_t kMaxSplits = 16;       // regex pre-tokenizers, each a pass over the text (real ones: 1)

struct Ctx {
  const std::string& path;
  TokenizerSpec& s;
  bool byte_level = false, metaspace = false, prepend = false, replace_space = false;
};

std::string at_index(const std::string& field, size_t i) { return field + "[" + std::to_string(i) + "]"; }

std::string type_of(const Ctx& c, const json& j, const std::string& field) {
  return tok::get_string(c.path, field + ".type", tok::need(c.path, field, j, "type"));
}

// Each Sequence level recurses once: bounded so that a hostile file cannot exhaust the stack
// (the JSON nesting limit bounds it too, but this names the problem).
void check_depth(const Ctx& c, const std::string& field, int depth) {
  if (depth > tok::kMaxPipelineDepth) fail(c.path, ": ", field, ": Sequence nested deeper than ", tok::kMaxPipelineDepth, " levels");
}

// Calls f(item, field) for each element of the list j[key].
template <class F>
void each(const Ctx& c, const std::string& field, const json& j, const char* key, F&& f) {
  const std::string list_field = tok::field_of(field, key);
  const json& list = tok::need_array(c.path, list_field, tok::need(c.path, field, j, key));
  for (size_t i = 0; i < list.size(); ++i) f(list[i], at_index(list_field, i));
}

void normalizer(Ctx& c, const json& j, const std::string& field, int depth) {
  check_depth(c, field, depth);
  const std::string t = type_of(c, j, field);
  if (t == "Sequence") {
    each(c, field, j, "normalizers", [&](const json& n, const std::string& f) { normalizer(c, n, f, depth + 1); });
  } else if (t == "Prepend") {
    const std::string p = tok::get_string(c.path, field + ".prepend", tok::need(c.path, field, j, "prepend"));
    if (p != kSpace) fail(c.path, ": ", field, ": normalizer Prepend of ", quote(p), " is not supported");
    c.prepend = true;
  } else if (t == "Replace") {
    const json& pat = tok::need_object(c.path, field + ".pattern", tok::need(c.path, field, j, "pattern"));
    const json* from = tok::member(pat, "String");
    const json* to = tok::member(j, "content");
    if (!from || !to || *from != " " || *to != kSpace)
      fail(c.path, ": ", field, ": normalizer Replace other than ' ' -> '\xE2\x96\x81' is not supported");
    c.replace_space = true;
  } else {
    fail(c.path, ": ", field, ": normalizer type ", quote(t), " is not supported");
  }
}

void pre_tokenizer(Ctx& c, const json& j, const std::string& field, int depth) {
  check_depth(c, field, depth);
  const std::string t = type_of(c, j, field);
  if (t == "Sequence") {
    each(c, field, j, "pretokenizers", [&](const json& p, const std::string& f) { pre_tokenizer(c, p, f, depth + 1); });
  } else if (t == "Split") {
    const json& pat = tok::need_object(c.path, field + ".pattern", tok::need(c.path, field, j, "pattern"));
    const json* regex = tok::member(pat, "Regex");
    if (!regex) fail(c.path, ": ", field, ": pre_tokenizer Split without a Regex pattern is not supported");
    const std::string behavior = tok::string_or(c.path, field, j, "behavior", "");
    if (behavior != "Isolated" || tok::bool_or(c.path, field, j, "invert", false))
      fail(c.path, ": ", field, ": pre_tokenizer Split behavior ", quote(behavior), " is not supported (only Isolated)");
    c.s.split_patterns.push_back(tok::get_string(c.path, field + ".pattern.Regex", *regex));
    if (c.s.split_patterns.size() > kMaxSplits) fail(c.path, ": ", field, ": more than ", kMaxSplits, " regex pre-tokenizers");
  } else if (t == "ByteLevel") {
    c.byte_level = true;
    if (tok::bool_or(c.path, field, j, "add_prefix_space", false))
      fail(c.path, ": ", field, ": pre_tokenizer ByteLevel add_prefix_space=true is not supported");
    if (tok::bool_or(c.path, field, j, "use_regex", true)) c.s.split_patterns.push_back(tok::kGpt2Pattern);
    if (c.s.split_patterns.size() > kMaxSplits) fail(c.path, ": ", field, ": more than ", kMaxSplits, " regex pre-tokenizers");
  } else if (t == "Metaspace") {
    if (tok::string_or(c.path, field, j, "replacement", kSpace) != kSpace)
      fail(c.path, ": ", field, ": Metaspace replacement other than '\xE2\x96\x81' is not supported");
    c.metaspace = true;
    const bool add_prefix = tok::bool_or(c.path, field, j, "add_prefix_space", true);
    const std::string scheme = tok::string_or(c.path, field, j, "prepend_scheme", add_prefix ? "always" : "never");
    using P = TokenizerSpec::Prefix;
    if (scheme == "always") c.s.dummy_prefix = P::Always;
    else if (scheme == "first") c.s.dummy_prefix = P::First;
    else if (scheme == "never") c.s.dummy_prefix = P::Never;
    else fail(c.path, ": ", field, ": Metaspace prepend_scheme ", quote(scheme), " is not supported");
  } else {
    fail(c.path, ": ", field, ": pre_tokenizer type ", quote(t), " is not supported");
  }
}

void decoder(Ctx& c, const json& j, const std::string& field, int depth) {
  check_depth(c, field, depth);
  const std::string t = type_of(c, j, field);
  if (t == "Sequence") {
    each(c, field, j, "decoders", [&](const json& d, const std::string& f) { decoder(c, d, f, depth + 1); });
  } else if (t == "Strip") {
    const json* start = tok::member(j, "start");
    const int64_t n = start ? tok::get_int(c.path, field + ".start", *start, 0, 1 << 20) : 0;
    if (tok::string_or(c.path, field, j, "content", " ") == " " && n >= 1) c.s.strip_leading_space = true;
  } else if (t == "Metaspace") {
    c.s.strip_leading_space = tok::string_or(c.path, field, j, "prepend_scheme", "always") != "never" &&
                              tok::bool_or(c.path, field, j, "add_prefix_space", true);
  } else if (t != "Replace" && t != "ByteFallback" && t != "Fuse" && t != "ByteLevel") {
    fail(c.path, ": ", field, ": decoder type ", quote(t), " is not supported");
  }
}

void post_processor(Ctx& c, const json& j, const std::string& field, int depth) {
  check_depth(c, field, depth);
  const std::string t = type_of(c, j, field);
  if (t == "Sequence") {
    each(c, field, j, "processors", [&](const json& p, const std::string& f) { post_processor(c, p, f, depth + 1); });
  } else if (t == "TemplateProcessing") {
    const json& specials = tok::need_object(c.path, field + ".special_tokens", tok::need(c.path, field, j, "special_tokens"));
    bool seen_sequence = false;
    each(c, field, j, "single", [&](const json& item, const std::string& f) {
      tok::need_object(c.path, f, item);
      if (tok::member(item, "Sequence")) {
        seen_sequence = true;
      } else if (const json* st = tok::member(item, "SpecialToken")) {
        const std::string name = tok::get_string(c.path, f + ".SpecialToken.id", tok::need(c.path, f + ".SpecialToken", *st, "id"));
        const json* def = tok::member(specials, name.c_str());
        if (!def) fail(c.path, ": ", f, ": post_processor special token ", quote(name), " is not defined");
        const std::string def_field = field + ".special_tokens[" + quote(name) + "]";
        std::vector<int>& out = seen_sequence ? c.s.suffix_ids : c.s.prefix_ids;
        each(c, def_field, *def, "ids", [&](const json& id, const std::string& idf) {
          // Range-checked against the vocabulary once it is known; the count is bounded here, as
          // "single" may name the same token many times.
          out.push_back(int(tok::get_int(c.path, idf, id, 0, tok::kMaxVocab - 1)));
          if (c.s.prefix_ids.size() + c.s.suffix_ids.size() > kMaxTemplateIds)
            fail(c.path, ": ", field, ": post_processor adds more than ", kMaxTemplateIds, " special tokens");
        });
      }
    });
  } else if (t != "ByteLevel") {
    fail(c.path, ": ", field, ": post_processor type ", quote(t), " is not supported");
  }
}

template <class Field>
std::pair<std::string, std::string> split_merge(const std::string& path, const Field& field, const json& m) {
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) return {m[0].get<std::string>(), m[1].get<std::string>()};
  if (m.is_string()) {
    const std::string& s = m.get_ref<const std::string&>();
    const size_t sp = s.find(' ', 1);  // a merge part is never empty
    if (sp != std::string::npos && sp + 1 < s.size()) return {s.substr(0, sp), s.substr(sp + 1)};
    fail(path, ": ", field(), ": malformed merge ", quote(s), " (expected \"left right\")");
  }
  fail(path, ": ", field(), ": malformed merge: expected \"left right\" or a list of two strings, not ", tok::type_name(m));
}

void read_model(Ctx& c, const json& j) {
  const std::string& path = c.path;
  TokenizerSpec& s = c.s;
  const json& model = tok::need(path, "", j, "model");
  const std::string type = type_of(c, model, "model");
  if (type != "BPE") fail(path, ": model type ", quote(type), " is not supported (only BPE)");
  if (const json* d = tok::member(model, "dropout")) {
    if (!d->is_number()) fail(path, ": model.dropout must be a number, not ", tok::type_name(*d));
    if (d->get<double>() != 0.0) fail(path, ": BPE dropout is not supported");
  }
  if (tok::member(model, "continuing_subword_prefix") || tok::member(model, "end_of_word_suffix"))
    fail(path, ": BPE continuing_subword_prefix/end_of_word_suffix are not supported");
  s.byte_fallback = tok::bool_or(path, "model", model, "byte_fallback", false);
  s.fuse_unk = tok::bool_or(path, "model", model, "fuse_unk", false);
  s.ignore_merges = tok::bool_or(path, "model", model, "ignore_merges", false);

  const json& vocab = tok::need_object(path, "model.vocab", tok::need(path, "model", model, "vocab"));
  const json& added = tok::need_array(path, "added_tokens", tok::need(path, "", j, "added_tokens"));
  // Ids come from the file: the vocabulary is sized by the largest one, so that must be backed by
  // entries the file really holds (a few gaps are tolerated; a lone id of 10^9 is not).
  std::unordered_map<std::string, int> ids;
  ids.reserve(vocab.size());
  int64_t n = 0;
  for (auto& [text, id] : vocab.items()) {
    // The field name is built only for the message: this loop runs for every token.
    const int i = id.is_number_unsigned() && id.get<uint64_t>() < uint64_t(tok::kMaxVocab)
                      ? int(id.get<uint64_t>())
                      : int(tok::get_int(path, "model.vocab[" + quote(text) + "]", id, 0, tok::kMaxVocab - 1));
    if (text.empty()) fail(path, ": model.vocab has an empty token (id ", i, ")");
    ids.emplace(text, i);
    n = std::max<int64_t>(n, i + 1);
  }
  std::vector<AddedToken> added_tokens;
  for (size_t k = 0; k < added.size(); ++k) {
    const std::string f = at_index("added_tokens", k);
    const json& a = tok::need_object(path, f, added[k]);
    AddedToken t{int(tok::get_int(path, f + ".id", tok::need(path, f, a, "id"), 0, tok::kMaxVocab - 1)),
                 tok::get_string(path, f + ".content", tok::need(path, f, a, "content")),
                 tok::bool_or(path, f, a, "special", false), tok::bool_or(path, f, a, "lstrip", false),
                 tok::bool_or(path, f, a, "rstrip", false)};
    if (t.content.empty()) fail(path, ": ", f, ": added token ", t.id, " is empty");
    if (t.content.size() > tok::kMaxAddedTokenBytes)
      fail(path, ": ", f, ": added token ", t.id, " is ", t.content.size(), " bytes long (at most ", tok::kMaxAddedTokenBytes, ")");
    n = std::max<int64_t>(n, t.id + 1);
    added_tokens.push_back(std::move(t));
  }
  const int64_t held = int64_t(vocab.size() + added.size());
  if (n > 2 * held + 256) fail(path, ": token ids go up to ", n - 1, " but the file holds only ", held, " tokens");

  s.tokens.assign(size_t(n), "");
  s.types.assign(size_t(n), TokenType::Unused);
  for (auto& [text, id] : ids) {
    if (!s.tokens[size_t(id)].empty())
      fail(path, ": model.vocab gives id ", id, " to both ", quote(s.tokens[size_t(id)]), " and ", quote(text));
    s.tokens[size_t(id)] = text;
    const bool byte = s.byte_fallback && text.size() == 6 && text.compare(0, 3, "<0x") == 0 && text[5] == '>' &&
                      std::isxdigit(uint8_t(text[3])) && std::isxdigit(uint8_t(text[4]));
    s.types[size_t(id)] = byte ? TokenType::Byte : TokenType::Normal;
  }
  if (const json* unk = tok::member(model, "unk_token")) {
    const std::string u = tok::get_string(path, "model.unk_token", *unk);
    auto it = ids.find(u);
    if (it == ids.end()) fail(path, ": model.unk_token ", quote(u), " is not in the vocabulary");
    s.unk_id = it->second;
    s.types[size_t(it->second)] = TokenType::Unknown;
  }
  const json& merges = tok::need_array(path, "model.merges", tok::need(path, "model", model, "merges"));
  s.merges.reserve(merges.size());
  s.ranked_merges = true;
  for (size_t k = 0; k < merges.size(); ++k) {
    auto f = [&] { return at_index("model.merges", k); };  // for messages only: hot loop
    auto [a, b] = split_merge(path, f, merges[k]);
    auto ia = ids.find(a), ib = ids.find(b), im = ids.find(a + b);
    if (ia == ids.end() || ib == ids.end() || im == ids.end())
      fail(path, ": ", f(), ": merge ", quote(a + " " + b), " uses a token that is not in the vocabulary");
    s.merges.emplace_back(ia->second, ib->second);
  }
  for (AddedToken& t : added_tokens) {
    s.tokens[size_t(t.id)] = t.content;
    if (s.types[size_t(t.id)] != TokenType::Unknown) s.types[size_t(t.id)] = t.special ? TokenType::Control : TokenType::UserDefined;
    s.added.push_back(std::move(t));
  }
}

}  // namespace

TokenizerSpec parse_tokenizer_json(std::string_view text, const std::string& path) {
  const json j = parse_json(text, path);
  TokenizerSpec s;
  s.source = path;
  s.strip_leading_space = false;
  Ctx c{path, s};
  try {
    read_model(c, j);
    if (const json* n = tok::member(j, "normalizer")) normalizer(c, *n, "normalizer", 0);
    if (const json* p = tok::member(j, "pre_tokenizer")) pre_tokenizer(c, *p, "pre_tokenizer", 0);
    if (const json* d = tok::member(j, "decoder")) decoder(c, *d, "decoder", 0);
    if (const json* p = tok::member(j, "post_processor")) post_processor(c, *p, "post_processor", 0);
  } catch (const json::exception& e) {
    // Every field is type-checked above; this is a safety net, without the library's raw text.
    fail(path, ": unexpected tokenizer.json structure (JSON error ", e.id, ")");
  }

  if (c.byte_level) {
    if (c.prepend || c.replace_space || c.metaspace) fail(path, ": mixes byte-level and SentencePiece-style rules");
    s.kind = TokenizerSpec::Kind::ByteLevelBpe;
    s.byte_fallback = false;
  } else {
    if (!s.split_patterns.empty()) fail(path, ": a Split pre-tokenizer without ByteLevel is not supported");
    s.kind = TokenizerSpec::Kind::SentencePieceBpe;
    if (c.metaspace) {
      s.escape_spaces = true;
    } else {
      s.escape_spaces = c.replace_space;
      s.dummy_prefix = c.prepend ? TokenizerSpec::Prefix::Always : TokenizerSpec::Prefix::Never;
    }
  }
  for (const std::vector<int>* v : {&s.prefix_ids, &s.suffix_ids})
    for (int id : *v)
      if (size_t(id) >= s.tokens.size()) fail(path, ": post_processor token id ", id, " is out of range (vocabulary of ", s.tokens.size(), ")");
  if (!s.prefix_ids.empty()) s.bos_id = s.prefix_ids.front();
  return s;
}

TokenizerSpec load_tokenizer_json(const std::string& path) {
  return parse_tokenizer_json(tok::read_file_capped(path, tok::kMaxTokenizerFile), path);
}

}  // namespace camelid
