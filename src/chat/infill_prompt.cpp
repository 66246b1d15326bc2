#include "chat/infill_prompt.h"

#include "core/error.h"

namespace camelid {

FimTokens find_fim_tokens(const Tokenizer& tok) {
  FimTokens t;
  const TokenizerSpec& s = tok.spec();
  const bool sentencepiece = s.kind == TokenizerSpec::Kind::SentencePieceBpe;
  if (s.fim_prefix_id >= 0 && s.fim_suffix_id >= 0 && s.fim_middle_id >= 0) {
    t.prefix = s.fim_prefix_id, t.suffix = s.fim_suffix_id, t.middle = s.fim_middle_id, t.eot = s.fim_eot_id;
    // Code Llama's GGUF files name its ▁<PRE> pieces: the spacing follows the pieces.
    t.code_llama = sentencepiece && tok.token_text(t.prefix) == "\xE2\x96\x81<PRE>";
    return t;
  }
  struct Names {
    const char *pre, *suf, *mid, *eot;
    bool code_llama;
  };
  static const Names kNames[] = {
      {"\xE2\x96\x81<PRE>", "\xE2\x96\x81<SUF>", "\xE2\x96\x81<MID>", "\xE2\x96\x81<EOT>", true},  // Code Llama
      {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", nullptr, false},
      {"<fim_prefix>", "<fim_suffix>", "<fim_middle>", nullptr, false},
  };
  for (const Names& n : kNames) {
    t.prefix = tok.token_id(n.pre), t.suffix = tok.token_id(n.suf), t.middle = tok.token_id(n.mid);
    t.eot = n.eot ? tok.token_id(n.eot) : -1;
    t.code_llama = n.code_llama && sentencepiece;
    if (t.found()) return t;
  }
  return FimTokens{};
}

std::vector<int> infill_prompt(const Tokenizer& tok, const std::string& prefix, const std::string& suffix,
                               const std::string& model, const std::vector<InfillFile>& extra) {
  const FimTokens f = find_fim_tokens(tok);
  if (!f.found())
    fail(model, ": the tokenizer has no fill-in-the-middle tokens (Code Llama's \xE2\x96\x81<PRE>/<SUF>/<MID>, "
                "<|fim_prefix|>/<|fim_suffix|>/<|fim_middle|>, or GGUF tokenizer.ggml.prefix_token_id/"
                "suffix_token_id/middle_token_id): use a code model trained for infill");
  std::vector<int> ids;
  if (tok.adds_bos()) ids.push_back(tok.bos_id());
  auto text = [&](const std::string& t) {
    const std::vector<int> e = tok.encode_continuation(t);
    ids.insert(ids.end(), e.begin(), e.end());
  };
  if (!extra.empty()) {
    const int file_sep = tok.token_id("<|file_sep|>"), repo = tok.token_id("<|repo_name|>");
    if (file_sep >= 0 && tok.is_special(file_sep)) {
      if (repo >= 0 && tok.is_special(repo)) ids.push_back(repo), text("myproject\n");
      for (const InfillFile& x : extra) ids.push_back(file_sep), text(x.filename + "\n"), text(x.text);
      ids.push_back(file_sep), text("filename\n");
    } else {
      for (const InfillFile& x : extra) text("\n\n--- snippet ---\n\n" + x.text);
    }
  }
  ids.push_back(f.prefix);
  // Code Llama: the prefix as usual text (SentencePiece puts a space in front), the suffix with
  // no space added, as Meta's reference encodes them. Other layouts add no space anywhere.
  const std::vector<int> pre = f.code_llama ? tok.encode(prefix, false, false) : tok.encode_continuation(prefix);
  const std::vector<int> suf = tok.encode_continuation(suffix);
  ids.insert(ids.end(), pre.begin(), pre.end());
  ids.push_back(f.suffix);
  ids.insert(ids.end(), suf.begin(), suf.end());
  ids.push_back(f.middle);
  return ids;
}

}  // namespace camelid
