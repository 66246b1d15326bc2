#include "tokenizer/tokenizer_json_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/loader_util.h"

namespace camelid {
namespace {

using ojson = nlohmann::ordered_json;
using tok::kSpace;

ojson added_token(int id, const std::string& content) {
  return ojson{{"id", id},           {"content", content}, {"single_word", false}, {"lstrip", false},
               {"rstrip", false},    {"normalized", false}, {"special", true}};
}

// BOS then the text, as the post-processor of both Llama tokenizers has it.
ojson template_processing(const TrainedTokenizer& t) {
  const std::string& bos = t.vocab[size_t(t.bos_id)];
  auto special = [&](int type_id) { return ojson{{"SpecialToken", {{"id", bos}, {"type_id", type_id}}}}; };
  auto seq = [](const char* id, int type_id) { return ojson{{"Sequence", {{"id", id}, {"type_id", type_id}}}}; };
  const int second = t.type == TokenizerTrainType::SentencePieceBpe ? 0 : 1;
  return ojson{{"type", "TemplateProcessing"},
               {"single", {special(0), seq("A", 0)}},
               {"pair", {special(0), seq("A", 0), special(second), seq("B", second)}},
               {"special_tokens", {{bos, {{"id", bos}, {"ids", {t.bos_id}}, {"tokens", {bos}}}}}}};
}

ojson byte_level_step(bool add_prefix_space, bool trim_offsets, bool use_regex) {
  return ojson{{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", trim_offsets}, {"use_regex", use_regex}};
}

// Simple chat templates in each family's style: Llama 2's [INST] markers (plain text for this
// vocabulary), Llama 3's header tokens.
const char* kSentencePieceChat =
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ bos_token + '[INST] <<SYS>>\\n' + message['content'] | trim + '\\n<</SYS>>\\n\\n' }}"
    "{% elif message['role'] == 'user' %}"
    "{% if loop.index0 == 0 or messages[loop.index0 - 1]['role'] != 'system' %}{{ bos_token + '[INST] ' }}{% endif %}"
    "{{ message['content'] | trim + ' [/INST]' }}"
    "{% else %}{{ ' ' + message['content'] | trim + ' ' + eos_token }}{% endif %}"
    "{% endfor %}";
const char* kByteLevelChat =
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".part";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(tmp, ": cannot create: ", std::strerror(errno));
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const int err = errno;
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    fail(tmp, ": write failed: ", std::strerror(ok ? errno : err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    fail(path, ": cannot rename ", tmp, " into place: ", std::strerror(e));
  }
}

}  // namespace

ojson tokenizer_json(const TrainedTokenizer& t) {
  const bool sp = t.type == TokenizerTrainType::SentencePieceBpe;
  ojson added = ojson::array();
  for (int id : t.special_ids) added.push_back(added_token(id, t.vocab[size_t(id)]));

  ojson vocab = ojson::object();
  for (size_t i = 0; i < t.vocab.size(); ++i) vocab[t.vocab[i]] = i;
  ojson merges = ojson::array();
  // Tokens never hold a space (SentencePiece: "▁"; byte-level: "Ġ"), so "left right" is unambiguous.
  for (auto& [a, b] : t.merges) merges.push_back(a + " " + b);

  ojson model{{"type", "BPE"},
              {"dropout", nullptr},
              {"unk_token", sp ? ojson(t.vocab[size_t(t.unk_id)]) : ojson(nullptr)},
              {"continuing_subword_prefix", nullptr},
              {"end_of_word_suffix", nullptr},
              {"fuse_unk", sp},
              {"byte_fallback", sp},
              {"ignore_merges", false},
              {"vocab", std::move(vocab)},
              {"merges", std::move(merges)}};

  ojson j{{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", std::move(added)}};
  if (sp) {
    j["normalizer"] = {{"type", "Sequence"},
                       {"normalizers",
                        {{{"type", "Prepend"}, {"prepend", kSpace}},
                         {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}}}}};
    j["pre_tokenizer"] = nullptr;
    j["post_processor"] = template_processing(t);
    j["decoder"] = {{"type", "Sequence"},
                    {"decoders",
                     {{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                      {{"type", "ByteFallback"}},
                      {{"type", "Fuse"}},
                      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  } else {
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers",
                           {{{"type", "Split"}, {"pattern", {{"Regex", tok::kLlama3Pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
                            byte_level_step(false, true, false)}}};
    j["post_processor"] = {{"type", "Sequence"}, {"processors", {byte_level_step(true, false, true), template_processing(t)}}};
    j["decoder"] = byte_level_step(true, true, true);
  }
  j["model"] = std::move(model);
  return j;
}

ojson tokenizer_config_json(const TrainedTokenizer& t, const TokenizerFileOptions& o) {
  const bool sp = t.type == TokenizerTrainType::SentencePieceBpe;
  ojson decoder = ojson::object();
  for (int id : t.special_ids) {
    ojson a = added_token(id, t.vocab[size_t(id)]);
    a.erase("id");
    decoder[std::to_string(id)] = std::move(a);
  }
  ojson j{{"add_bos_token", true},
          {"add_eos_token", false},
          {"added_tokens_decoder", std::move(decoder)},
          {"bos_token", t.vocab[size_t(t.bos_id)]},
          {"eos_token", t.vocab[size_t(t.eos_id)]}};
  if (sp) j["unk_token"] = t.vocab[size_t(t.unk_id)];
  j["pad_token"] = nullptr;
  j["clean_up_tokenization_spaces"] = false;
  j["model_max_length"] = o.model_max_length;
  j["tokenizer_class"] = "PreTrainedTokenizerFast";
  j["chat_template"] = sp ? kSentencePieceChat : kByteLevelChat;
  return j;
}

void write_tokenizer_files(const TrainedTokenizer& t, const std::string& dir, const TokenizerFileOptions& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir, ec)) fail(dir, ": cannot create the output directory", ec ? ": " + ec.message() : "");
  write_atomically((fs::path(dir) / "tokenizer.json").string(), dump_json(tokenizer_json(t), 2) + "\n");
  write_atomically((fs::path(dir) / "tokenizer_config.json").string(), dump_json(tokenizer_config_json(t, o), 2) + "\n");
}

}  // namespace camelid
