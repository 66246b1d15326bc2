// Hugging Face tokenizer.json -> TokenizerSpec. Only the pipelines the Llama family uses are
// accepted (BPE model; Prepend/Replace normalizers or Metaspace for SentencePiece-style
// vocabularies; Split + ByteLevel for byte-level ones); anything else is a clear error rather
// than a tokenizer that silently differs from the reference.
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.h"
#include "core/mmap_file.h"
#include "tokenizer/loaders.h"

namespace camelid {
namespace {

using json = nlohmann::json;
const std::string kSpace = "\xE2\x96\x81";  // "▁"
// The GPT-2 pre-tokenizer regex that ByteLevel(use_regex=true) applies.
const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct Ctx {
  const std::string& path;
  TokenizerSpec& s;
  bool byte_level = false, metaspace = false, prepend = false, replace_space = false;
};

std::string type_of(const Ctx& c, const json& j, const char* what) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    fail(c.path, ": ", what, " has no \"type\"");
  return j["type"].get<std::string>();
}

void normalizer(Ctx& c, const json& j) {
  if (j.is_null()) return;
  const std::string t = type_of(c, j, "normalizer");
  if (t == "Sequence") {
    for (const json& n : j.at("normalizers")) normalizer(c, n);
  } else if (t == "Prepend") {
    if (j.at("prepend") != kSpace) fail(c.path, ": normalizer Prepend of '", j.at("prepend").get<std::string>(), "' is not supported");
    c.prepend = true;
  } else if (t == "Replace") {
    const json& pat = j.at("pattern");
    if (!pat.contains("String") || pat["String"] != " " || j.at("content") != kSpace)
      fail(c.path, ": normalizer Replace other than ' ' -> '▁' is not supported");
    c.replace_space = true;
  } else {
    fail(c.path, ": normalizer type '", t, "' is not supported");
  }
}

void pre_tokenizer(Ctx& c, const json& j) {
  if (j.is_null()) return;
  const std::string t = type_of(c, j, "pre_tokenizer");
  if (t == "Sequence") {
    for (const json& p : j.at("pretokenizers")) pre_tokenizer(c, p);
  } else if (t == "Split") {
    const json& pat = j.at("pattern");
    if (!pat.contains("Regex")) fail(c.path, ": pre_tokenizer Split without a Regex pattern is not supported");
    if (j.value("behavior", "") != "Isolated" || j.value("invert", false))
      fail(c.path, ": pre_tokenizer Split behavior '", j.value("behavior", ""), "' is not supported (only Isolated)");
    c.s.split_patterns.push_back(pat["Regex"].get<std::string>());
  } else if (t == "ByteLevel") {
    c.byte_level = true;
    if (j.value("add_prefix_space", false)) fail(c.path, ": pre_tokenizer ByteLevel add_prefix_space=true is not supported");
    if (j.value("use_regex", true)) c.s.split_patterns.push_back(kGpt2Pattern);
  } else if (t == "Metaspace") {
    if (j.value("replacement", kSpace) != kSpace) fail(c.path, ": Metaspace replacement other than '▁' is not supported");
    c.metaspace = true;
    std::string scheme = j.value("prepend_scheme", j.value("add_prefix_space", true) ? "always" : "never");
    c.s.dummy_prefix = scheme == "always" ? TokenizerSpec::Prefix::Always
                       : scheme == "first" ? TokenizerSpec::Prefix::First
                       : scheme == "never" ? TokenizerSpec::Prefix::Never
                       : (fail(c.path, ": Metaspace prepend_scheme '", scheme, "' is not supported"), TokenizerSpec::Prefix::Never);
  } else {
    fail(c.path, ": pre_tokenizer type '", t, "' is not supported");
  }
}

void decoder(Ctx& c, const json& j) {
  if (j.is_null()) return;
  const std::string t = type_of(c, j, "decoder");
  if (t == "Sequence") {
    for (const json& d : j.at("decoders")) decoder(c, d);
  } else if (t == "Strip") {
    if (j.value("content", " ") == " " && j.value("start", 0) >= 1) c.s.strip_leading_space = true;
  } else if (t == "Metaspace") {
    c.s.strip_leading_space = j.value("prepend_scheme", "always") != "never" && j.value("add_prefix_space", true);
  } else if (t != "Replace" && t != "ByteFallback" && t != "Fuse" && t != "ByteLevel") {
    fail(c.path, ": decoder type '", t, "' is not supported");
  }
}

void post_processor(Ctx& c, const json& j) {
  if (j.is_null()) return;
  const std::string t = type_of(c, j, "post_processor");
  if (t == "Sequence") {
    for (const json& p : j.at("processors")) post_processor(c, p);
  } else if (t == "TemplateProcessing") {
    const json& specials = j.at("special_tokens");
    bool seen_sequence = false;
    for (const json& item : j.at("single")) {
      if (item.contains("Sequence")) {
        seen_sequence = true;
      } else if (item.contains("SpecialToken")) {
        const std::string name = item["SpecialToken"].at("id");
        if (!specials.contains(name)) fail(c.path, ": post_processor special token '", name, "' is not defined");
        for (const json& id : specials[name].at("ids")) (seen_sequence ? c.s.suffix_ids : c.s.prefix_ids).push_back(id.get<int>());
      }
    }
  } else if (t != "ByteLevel") {
    fail(c.path, ": post_processor type '", t, "' is not supported");
  }
}

std::pair<std::string, std::string> split_merge(const std::string& path, const json& m) {
  if (m.is_array() && m.size() == 2) return {m[0].get<std::string>(), m[1].get<std::string>()};
  if (m.is_string()) {
    const std::string s = m.get<std::string>();
    const size_t sp = s.find(' ', 1);  // a merge part is never empty
    if (sp != std::string::npos) return {s.substr(0, sp), s.substr(sp + 1)};
  }
  fail(path, ": malformed merge ", m.dump());
}

}  // namespace

TokenizerSpec load_tokenizer_json(const std::string& path) {
  json j;
  try {
    j = json::parse(read_text_file(path));
  } catch (const json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
  TokenizerSpec s;
  s.source = path;
  s.strip_leading_space = false;
  Ctx c{path, s};
  try {
    const json& model = j.at("model");
    if (type_of(c, model, "model") != "BPE") fail(path, ": model type '", model["type"].get<std::string>(), "' is not supported (only BPE)");
    if (!model.value("dropout", json()).is_null() && model["dropout"].get<double>() != 0.0)
      fail(path, ": BPE dropout is not supported");
    if (!model.value("continuing_subword_prefix", json()).is_null() || !model.value("end_of_word_suffix", json()).is_null())
      fail(path, ": BPE continuing_subword_prefix/end_of_word_suffix are not supported");
    s.byte_fallback = model.value("byte_fallback", false);
    s.fuse_unk = model.value("fuse_unk", false);
    s.ignore_merges = model.value("ignore_merges", false);

    std::unordered_map<std::string, int> ids;
    int n = 0;
    for (auto& [tok, id] : model.at("vocab").items()) {
      const int i = id.get<int>();
      if (i < 0 || i > 10'000'000) fail(path, ": vocab id ", i, " of '", tok, "' out of range");
      ids[tok] = i;
      n = std::max(n, i + 1);
    }
    for (const json& a : j.at("added_tokens")) n = std::max(n, a.at("id").get<int>() + 1);
    s.tokens.assign(size_t(n), "");
    s.types.assign(size_t(n), TokenType::Unused);
    for (auto& [tok, id] : ids) {
      s.tokens[size_t(id)] = tok;
      const bool byte = s.byte_fallback && tok.size() == 6 && tok.compare(0, 3, "<0x") == 0 && tok[5] == '>';
      s.types[size_t(id)] = byte ? TokenType::Byte : TokenType::Normal;
    }
    if (!model.value("unk_token", json()).is_null()) {
      auto it = ids.find(model["unk_token"].get<std::string>());
      if (it == ids.end()) fail(path, ": unk_token '", model["unk_token"].get<std::string>(), "' is not in the vocabulary");
      s.unk_id = it->second;
      s.types[size_t(it->second)] = TokenType::Unknown;
    }
    for (const json& m : model.at("merges")) {
      auto [a, b] = split_merge(path, m);
      auto ia = ids.find(a), ib = ids.find(b), im = ids.find(a + b);
      if (ia == ids.end() || ib == ids.end() || im == ids.end())
        fail(path, ": merge '", a, " ", b, "' uses a token that is not in the vocabulary");
      s.merges.emplace_back(ia->second, ib->second);
    }
    for (const json& a : j.at("added_tokens")) {
      AddedToken t{a.at("id").get<int>(), a.at("content").get<std::string>(), a.value("special", false),
                   a.value("lstrip", false), a.value("rstrip", false)};
      if (t.content.empty()) fail(path, ": added token ", t.id, " is empty");
      s.tokens[size_t(t.id)] = t.content;
      if (s.types[size_t(t.id)] != TokenType::Unknown) s.types[size_t(t.id)] = t.special ? TokenType::Control : TokenType::UserDefined;
      s.added.push_back(std::move(t));
    }

    normalizer(c, j.value("normalizer", json()));
    pre_tokenizer(c, j.value("pre_tokenizer", json()));
    decoder(c, j.value("decoder", json()));
    post_processor(c, j.value("post_processor", json()));
  } catch (const json::exception& e) {
    fail(path, ": unexpected tokenizer.json structure: ", e.what());
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
  if (!s.prefix_ids.empty()) s.bos_id = s.prefix_ids.front();
  for (int id : s.prefix_ids)
    if (id < 0 || size_t(id) >= s.tokens.size()) fail(path, ": post_processor token id ", id, " out of range");
  for (int id : s.suffix_ids)
    if (id < 0 || size_t(id) >= s.tokens.size()) fail(path, ": post_processor token id ", id, " out of range");
  return s;
}

}  // namespace camelid
