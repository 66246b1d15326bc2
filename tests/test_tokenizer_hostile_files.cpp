// Tokenizer files from strangers (issue 9): hostile ids, nesting, types and protobuf bytes in
// tokenizer.json, tokenizer.model and tokenizer_config.json give an Error naming the file, the
// field and the value; never a crash, a huge allocation or a hang. Inputs are generated here.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "tokenizer/loader_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"
#include "tokenizer_test_files.h"

namespace camelid {
namespace {

using test::json;

// Loads `file` written into a fresh directory (plus `config` as tokenizer_config.json when given)
// and expects an Error containing each fragment and the file's path.
void expect_load_error(const std::string& name, const std::string& content, const std::vector<std::string>& fragments,
                       const std::string& config = "") {
  const std::string dir = test::temp_dir("err");
  const std::string path = test::write_file(dir, name, content);
  if (!config.empty()) test::write_file(dir, "tokenizer_config.json", config);
  try {
    Tokenizer::load(dir);
    ADD_FAILURE() << "no error for " << name << " (expected " << fragments.front() << ")";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "missing '" << f << "' in: " << msg;
    EXPECT_NE(msg.find(config.empty() ? path : dir), std::string::npos) << "should name the file: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

std::unique_ptr<Tokenizer> load_ok(const std::string& name, const std::string& content, const std::string& config = "") {
  const std::string dir = test::temp_dir("ok");
  test::write_file(dir, name, content);
  if (!config.empty()) test::write_file(dir, "tokenizer_config.json", config);
  return Tokenizer::load(dir);
}

void json_error(const json& j, const std::vector<std::string>& fragments) { expect_load_error("tokenizer.json", j.dump(), fragments); }

TEST(HostileTokenizerJson, GeneratedFilesLoad) {
  auto sp = load_ok("tokenizer.json", test::tiny_sp_json().dump());
  EXPECT_EQ(sp->encode("ab a", true, false), (std::vector<int>{1, 8, 7}));
  EXPECT_EQ(sp->decode(sp->encode("ab a\xF0\x9F\xA6\x99", false, false)), "ab a\xF0\x9F\xA6\x99");
  auto bl = load_ok("tokenizer.json", test::tiny_byte_level_json().dump());
  EXPECT_EQ(bl->encode("ab<|end|>", false, true), (std::vector<int>{256, 257}));
  EXPECT_EQ(bl->decode(bl->encode("x y\xFF", false, false)), "x y\xEF\xBF\xBD");
}

TEST(HostileTokenizerJson, AddedTokenIdsAreRangeChecked) {
  for (const json& id : {json(-1), json(2147483647), json(1000000000), json(4294967296), json(-4294967296LL)}) {
    json j = test::tiny_sp_json();
    j["added_tokens"].push_back({{"id", id}, {"content", "<x>"}, {"special", true}});
    json_error(j, {"added_tokens[3].id = " + id.dump(), "out of range"});
  }
  json j = test::tiny_sp_json();
  j["added_tokens"].push_back({{"id", 100000}, {"content", "<x>"}});  // below the cap, but no tokens back it
  json_error(j, {"token ids go up to 100000", "holds only"});
  j = test::tiny_sp_json();
  j["added_tokens"][0]["id"] = 1.5;
  json_error(j, {"added_tokens[0].id must be an integer, not a number"});
  j = test::tiny_sp_json();
  j["added_tokens"][0]["id"] = "0";
  json_error(j, {"added_tokens[0].id must be an integer, not a string"});
  j = test::tiny_sp_json();
  j["added_tokens"][0]["content"] = "";
  json_error(j, {"added_tokens[0]", "is empty"});
  j = test::tiny_sp_json();
  j["added_tokens"][0]["content"] = std::string(2000, 'x');
  json_error(j, {"added_tokens[0]", "2000 bytes long"});
  j = test::tiny_sp_json();
  j["added_tokens"] = json::object();
  json_error(j, {"added_tokens must be a list, not an object"});
}

TEST(HostileTokenizerJson, VocabIdsAreRangeCheckedAndUnique) {
  json j = test::tiny_sp_json();
  j["model"]["vocab"]["zz"] = -5;
  json_error(j, {"model.vocab['zz'] = -5", "out of range"});
  j = test::tiny_sp_json();
  j["model"]["vocab"]["zz"] = 1e12;
  json_error(j, {"model.vocab['zz'] must be an integer"});
  j = test::tiny_sp_json();
  j["model"]["vocab"]["zz"] = 5;
  json_error(j, {"gives id 5 to both"});
  j = test::tiny_sp_json();
  j["model"]["vocab"]["\x01zz"] = 99999999;
  json_error(j, {"model.vocab['\\x01zz'] = 99999999", "out of range"});
  j = test::tiny_sp_json();
  j["model"]["vocab"] = json::array({1, 2});
  json_error(j, {"model.vocab must be an object, not a list"});
}

TEST(HostileTokenizerJson, MergesMustNameVocabularyTokens) {
  json j = test::tiny_sp_json();
  j["model"]["merges"].push_back("a zz");
  json_error(j, {"model.merges[3]", "'a zz' uses a token that is not in the vocabulary"});
  j = test::tiny_sp_json();
  j["model"]["merges"].push_back(42);
  json_error(j, {"model.merges[3]", "malformed merge"});
  j = test::tiny_sp_json();
  j["model"]["merges"].push_back("ab");
  json_error(j, {"model.merges[3]", "malformed merge 'ab'"});
  j = test::tiny_sp_json();
  j["model"]["merges"].push_back(json::array({"a", 1}));
  json_error(j, {"model.merges[3]", "malformed merge"});
}

TEST(HostileTokenizerJson, SpecialIdsOfThePostProcessorAreRangeChecked) {
  for (const json& id : {json(99999), json(-1), json(4294967297)}) {
    json j = test::tiny_sp_json();
    j["post_processor"]["special_tokens"]["<s>"]["ids"] = json::array({id});  // not {id}: clang reads that as a copy of id
    json_error(j, {"out of range"});
  }
  json j = test::tiny_sp_json();
  j["post_processor"]["special_tokens"]["<s>"]["ids"] = {"1"};
  json_error(j, {"post_processor.special_tokens['<s>'].ids[0] must be an integer"});
  j = test::tiny_sp_json();
  j["post_processor"]["single"][0]["SpecialToken"]["id"] = "<nope>";
  json_error(j, {"'<nope>' is not defined"});
  // One special token named many times must not multiply into a huge prefix.
  j = test::tiny_sp_json();
  j["post_processor"]["special_tokens"]["<s>"]["ids"] = json(std::vector<int>(1000, 1));
  for (int i = 0; i < 1000; ++i) j["post_processor"]["single"].push_back(j["post_processor"]["single"][0]);
  json_error(j, {"more than 64 special tokens"});
  j = test::tiny_sp_json();
  j["model"]["unk_token"] = "<nope>";
  json_error(j, {"model.unk_token '<nope>' is not in the vocabulary"});
  j = test::tiny_sp_json();
  j["model"]["unk_token"] = 0;
  json_error(j, {"model.unk_token must be a string"});
}

TEST(HostileTokenizerJson, NestingIsBounded) {
  // 50,000 nested Sequences: rejected by the JSON nesting limit before any recursion.
  std::string deep = "{\"type\":\"Prepend\",\"prepend\":\"\xE2\x96\x81\"}";
  std::string text = test::tiny_sp_json().dump();
  std::string open, close;
  for (int i = 0; i < 50000; ++i) open += R"({"type":"Sequence","normalizers":[)", close += "]}";
  std::string nested = text;
  nested.replace(nested.find("\"normalizer\":"), 13, "\"normalizer\":" + open + deep + close + ",\"unused\":");
  const auto t0 = std::chrono::steady_clock::now();
  expect_load_error("tokenizer.json", nested, {"nested deeper than"});
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  // Within the JSON limit, the pipeline's own limit names the field.
  for (const char* kind : {"normalizer", "pre_tokenizer", "decoder", "post_processor"}) {
    const std::string list = std::string(kind) == "normalizer" ? "normalizers" : std::string(kind) == "pre_tokenizer" ? "pretokenizers"
                             : std::string(kind) == "decoder" ? "decoders" : "processors";
    json leaf = {{"type", "Sequence"}, {list, json::array()}};
    for (int i = 0; i < 30; ++i) leaf = {{"type", "Sequence"}, {list, {leaf}}};
    json j = test::tiny_sp_json();
    j[kind] = leaf;
    json_error(j, {kind, "Sequence nested deeper than 16 levels"});
  }
}

TEST(HostileTokenizerJson, WrongTypesNameTheField) {
  json j = test::tiny_sp_json();
  j["model"]["byte_fallback"] = "yes";
  json_error(j, {"model.byte_fallback must be true or false, not a string"});
  j = test::tiny_sp_json();
  j["model"] = json::array();
  json_error(j, {"model must be an object, not a list"});
  j = test::tiny_sp_json();
  j["model"]["dropout"] = "0.1";
  json_error(j, {"model.dropout must be a number"});
  j = test::tiny_sp_json();
  j["normalizer"]["normalizers"][0]["prepend"] = 7;
  json_error(j, {"normalizer.normalizers[0].prepend must be a string, not an integer"});
  j = test::tiny_sp_json();
  j["decoder"]["decoders"][3]["start"] = -1;
  json_error(j, {"decoder.decoders[3].start = -1"});
  j = test::tiny_sp_json();
  j["normalizer"]["type"] = json::object();
  json_error(j, {"normalizer.type must be a string"});
  json b = test::tiny_byte_level_json();
  b["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = 3;
  json_error(b, {"pre_tokenizer.pretokenizers[0].pattern.Regex must be a string"});
  expect_load_error("tokenizer.json", "[1, 2]", {"the file must be an object, not a list"});
  expect_load_error("tokenizer.json", R"({"model": {}, "model": {}})", {"duplicate key"});
}

TEST(HostileTokenizerJson, RegexPatternsAreChecked) {
  json_error(test::tiny_byte_level_json("(a"), {"regex does not compile"});
  json_error(test::tiny_byte_level_json(R"((a)\1)"), {"back-references"});
  json_error(test::tiny_byte_level_json(std::string(100000, 'a')), {"100000 bytes long"});
  json j = test::tiny_byte_level_json();
  for (int i = 0; i < 20; ++i) j["pre_tokenizer"]["pretokenizers"].push_back(j["pre_tokenizer"]["pretokenizers"][0]);
  json_error(j, {"more than 16 regex pre-tokenizers"});
}

TEST(HostileTokenizerJson, OddButHarmlessVocabulariesLoad) {
  // "<0xZZ>" looks like a byte token but is not one (used to throw std::invalid_argument).
  json j = test::tiny_sp_json();
  j["model"]["vocab"]["<0xZZ>"] = 265;
  auto t = load_ok("tokenizer.json", j.dump());
  EXPECT_EQ(t->decode({265}), "<0xZZ>");
  // "▁" right after a one-byte character (used to throw std::out_of_range).
  j = test::tiny_sp_json();
  j["model"]["vocab"]["a\xE2\x96\x81"] = 265;
  t = load_ok("tokenizer.json", j.dump());
  EXPECT_EQ(t->decode(t->encode("a a", false, false)), "a a");
  // A few id gaps are tolerated (unused ids decode to nothing).
  j = test::tiny_sp_json();
  j["model"]["vocab"]["zz"] = 300;
  t = load_ok("tokenizer.json", j.dump());
  EXPECT_EQ(t->vocab_size(), 301);
  EXPECT_EQ(t->decode({280}), "");
}

TEST(HostileTokenizerFiles, SizeIsCappedWhileReading) {
  const std::string dir = test::temp_dir("big");
  const std::string path = test::write_file(dir, "tokenizer.json", std::string((1 << 20) + 1, ' '));
  try {
    tok::read_file_capped(path, 1 << 20);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": file is larger than 1 MiB"), std::string::npos) << e.what();
  }
  EXPECT_EQ(tok::read_file_capped(path, 2 << 20).size(), size_t(1 << 20) + 1);
}

// ---- tokenizer.model ----

void model_error(const std::string& bytes, const std::vector<std::string>& fragments) {
  expect_load_error("tokenizer.model", bytes, fragments);
}

TEST(HostileSentencePiece, GeneratedModelLoads) {
  auto t = load_ok("tokenizer.model", test::sp_model(test::tiny_sp_pieces()));
  EXPECT_EQ(t->encode("ab a", true, false), (std::vector<int>{1, 3, 6, 7}));
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_ids(), std::vector<int>{2});
}

TEST(HostileSentencePiece, BrokenWireFormat) {
  const std::string good = test::sp_model(test::tiny_sp_pieces());
  model_error(good.substr(0, good.size() - 3), {"runs past the end"});
  model_error(test::Proto().tag(1, 2).varint(1ull << 62).bytes + "abc", {"runs past the end"});
  model_error(test::Proto().tag(1, 2).varint(UINT64_MAX).bytes, {"runs past the end"});
  model_error(std::string("\x0a") + std::string(11, '\xff'), {"malformed protobuf varint"});
  model_error(std::string("\x0a\xff"), {"truncated protobuf varint"});
  model_error(test::Proto().tag(1, 3).bytes + good, {"unsupported protobuf wire type 3"});
  model_error(test::Proto().str(1, std::string("\x15\x00\x00", 3)).bytes, {"truncated protobuf float"});
  model_error("", {"no pieces"});
  model_error(test::sp_model({}), {"no pieces"});
  model_error(std::string(1000, '\0'), {"no pieces"});
}

TEST(HostileSentencePiece, BadPieces) {
  auto with = [](size_t i, const test::SpPiece& p) {
    auto pieces = test::tiny_sp_pieces();
    if (i < pieces.size()) pieces[i] = p;
    else pieces.push_back(p);
    return test::sp_model(pieces);
  };
  model_error(with(8, {"", 0, 1}), {"piece 8 is empty"});
  model_error(with(8, {"zz", std::numeric_limits<float>::quiet_NaN(), 1}), {"piece 8 ('zz') has score NaN"});
  model_error(with(8, {"zz", 0, 7}), {"unknown SentencePiece piece type 7"});
  model_error(with(8, {"zz", 0, 0}), {"unknown SentencePiece piece type 0"});
  model_error(test::sp_model(test::tiny_sp_pieces(), {}, test::Proto().msg(1, test::Proto().str(1, "zz").uint(3, 1ull << 40))),
              {"unknown SentencePiece piece type 1099511627776"});
  model_error(with(8, {"a", 0, 1}), {"piece 8 ('a') is defined twice"});
  model_error(with(8, {"<0xZZ>", 0, 6}), {"piece 8 ('<0xZZ>') has type BYTE but is not <0xHH>"});
  model_error(with(8, {"\xff\xfe", 0, 4}), {"not valid UTF-8"});
  model_error(with(8, {std::string(5000, 'u'), 0, 4}), {"5000 bytes long"});
  // A piece without its text field.
  model_error(test::sp_model(test::tiny_sp_pieces(), {}, test::Proto().msg(1, test::Proto().f32(2, 1.0f))), {"piece 8 is empty"});
  // Infinite scores are ordered fine.
  auto t = load_ok("tokenizer.model", with(8, {"zz", -std::numeric_limits<float>::infinity(), 1}));
  EXPECT_EQ(t->vocab_size(), 9);
}

TEST(HostileSentencePiece, TrainerIdsAreRangeChecked) {
  const auto pieces = test::tiny_sp_pieces();
  model_error(test::sp_model(pieces, test::Proto().uint(41, 70000)), {"trainer_spec.bos_id 70000 is out of range (8 pieces)"});
  model_error(test::sp_model(pieces, test::Proto().uint(42, 8)), {"trainer_spec.eos_id 8 is out of range"});
  model_error(test::sp_model(pieces, test::Proto().uint(40, uint64_t(-5))), {"trainer_spec.unk_id -5 is out of range"});
  // 2^32 + 1 must not wrap around to a valid id silently... it is 1 as an int32, as protobuf reads it.
  auto t = load_ok("tokenizer.model", test::sp_model(pieces, test::Proto().uint(41, (1ull << 32) + 1)));
  EXPECT_EQ(t->bos_id(), 1);
  // -1 disables a token, as in SentencePiece.
  t = load_ok("tokenizer.model", test::sp_model(pieces, test::Proto().uint(41, uint64_t(-1))));
  EXPECT_EQ(t->bos_id(), -1);
  EXPECT_EQ(t->encode("a", true, false), (std::vector<int>{7}));
  model_error(test::sp_model(pieces, test::Proto().uint(3, 1)), {"model_type 1 is not supported"});
}

TEST(HostileSentencePiece, LongPiecesLoadInLinearTime) {
  // Trying every split of a megabyte piece used to cost its length squared (~10^12 steps).
  auto pieces = test::tiny_sp_pieces();
  for (int i = 0; i < 4; ++i) pieces.push_back({std::string(1 << 20, char('c' + i)), -9, 1});
  const auto t0 = std::chrono::steady_clock::now();
  auto t = load_ok("tokenizer.model", test::sp_model(pieces));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  EXPECT_EQ(t->vocab_size(), 12);
}

// ---- tokenizer_config.json ----

const std::string kSpJson = test::tiny_sp_json().dump();

void config_error(const json& cfg, std::vector<std::string> fragments) {
  fragments.push_back("tokenizer_config.json");
  expect_load_error("tokenizer.json", kSpJson, fragments, cfg.dump());
}

TEST(HostileTokenizerConfig, ChatTemplateTypes) {
  EXPECT_EQ(parse_tokenizer_config(R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})", "c")
                .chat_template,
            "D");
  EXPECT_EQ(parse_tokenizer_config(R"({"chat_template": null})", "c").chat_template, "");
  EXPECT_EQ(parse_tokenizer_config(R"({"chat_template": []})", "c").chat_template, "");
  config_error({{"chat_template", {{{"name", "tool_use"}, {"template", "T"}}}}}, {"without one named 'default'", "'tool_use'"});
  config_error({{"chat_template", 5}}, {"chat_template must be a string or a list of named templates, not an integer"});
  config_error({{"chat_template", {{{"name", "default"}, {"template", 1}}}}}, {"chat_template[0].template must be a string"});
  config_error({{"chat_template", {"x"}}}, {"chat_template[0] must be an object, not a string"});
  config_error({{"chat_template", {{{"template", "x"}}}}}, {"chat_template[0] has no \"name\""});
  config_error({{"chat_template", json::object()}}, {"chat_template must be a string or a list"});
}

TEST(HostileTokenizerConfig, SpecialTokenFields) {
  EXPECT_EQ(parse_tokenizer_config(R"({"bos_token": {"content": "<s>", "__type": "AddedToken"}})", "c").bos_token, "<s>");
  EXPECT_EQ(parse_tokenizer_config(R"({"bos_token": null, "eos_token": "</s>"})", "c").bos_token, "");
  config_error({{"bos_token", {{"content", 5}}}}, {"bos_token.content must be a string, not an integer"});
  config_error({{"bos_token", json::object()}}, {"bos_token has no \"content\""});
  config_error({{"eos_token", {1, 2}}}, {"eos_token must be a string or an object"});
  config_error({{"bos_token", 7}}, {"bos_token must be a string or an object"});
  config_error({{"add_bos_token", "yes"}}, {"add_bos_token must be true or false, not a string"});
  config_error(json::array(), {"expected a JSON object, not a list"});
  expect_load_error("tokenizer.json", kSpJson, {"duplicate key"}, R"({"bos_token": "<s>", "bos_token": "</s>"})");
  expect_load_error("tokenizer.json", kSpJson, {"nested deeper than"}, std::string(100000, '[') + std::string(100000, ']'));
  // Unknown token texts fall back to the tokenizer's own BOS/EOS.
  auto t = load_ok("tokenizer.json", kSpJson, R"({"bos_token": "<nope>", "eos_token": {"content": "<nope>"}})");
  EXPECT_EQ(t->bos_id(), 1);
}

TEST(HostileTokenizerConfig, AddedTokensDecoderIds) {
  auto entry = [](const std::string& content, bool special = true) { return json{{"content", content}, {"special", special}}; };
  config_error({{"added_tokens_decoder", {{"-1", entry("<x>")}}}}, {"added_tokens_decoder['-1']", "must be a token id"});
  config_error({{"added_tokens_decoder", {{"1e3", entry("<x>")}}}}, {"must be a token id"});
  config_error({{"added_tokens_decoder", {{"2147483647", entry("<x>")}}}}, {"must be a token id"});
  config_error({{"added_tokens_decoder", {{"99999999", entry("<x>")}}}}, {"token id 99999999 is out of range"});
  config_error({{"added_tokens_decoder", {{"1000", entry("<x>")}}}}, {"added_tokens_decoder[1000]", "out of range (vocabulary of 265"});
  config_error({{"added_tokens_decoder", {{"1", entry("<bos>")}}}}, {"added_tokens_decoder[1] is '<bos>' but", "has '<s>' there"});
  config_error({{"added_tokens_decoder", {{"1", "<s>"}}}}, {"added_tokens_decoder['1'] must be an object, not a string"});
  config_error({{"added_tokens_decoder", {{"1", {{"special", true}}}}}}, {"added_tokens_decoder['1'] has no \"content\""});
  config_error({{"added_tokens_decoder", {{"1", {{"content", "<s>"}, {"special", 1}}}}}}, {"added_tokens_decoder['1'].special must be true or false"});
  config_error({{"added_tokens_decoder", {{"1", entry("<s>")}, {"01", entry("<s>")}}}}, {"names token id 1 twice"});
  config_error({{"added_tokens_decoder", {{"265", entry("<s>")}}}}, {"'<s>' is already token 1"});
  config_error({{"added_tokens_decoder", {1, 2}}}, {"added_tokens_decoder must be an object, not a list"});
  // Matching entries are fine; ids just past the vocabulary add tokens (as transformers does).
  auto t = load_ok("tokenizer.json", kSpJson,
                   json{{"added_tokens_decoder", {{"1", entry("<s>")}, {"265", entry("<pad>")}, {"266", entry("<tool>", false)}}}}.dump());
  EXPECT_EQ(t->vocab_size(), 267);
  EXPECT_EQ(t->token_id("<pad>"), 265);
  EXPECT_TRUE(t->is_special(265));
  EXPECT_EQ(t->encode("a<tool>", false, false), (std::vector<int>{7, 266}));
  EXPECT_EQ(t->decode({265, 266}), "<pad><tool>");
}

TEST(HostileTokenizerConfig, SentencePieceModelWithConfig) {
  // add_bos_token/add_eos_token decide BOS/EOS for a tokenizer.model.
  auto t = load_ok("tokenizer.model", test::sp_model(test::tiny_sp_pieces()), R"({"add_bos_token": false, "add_eos_token": true})");
  EXPECT_EQ(t->encode("a", true, false), (std::vector<int>{7, 2}));
  expect_load_error("tokenizer.model", test::sp_model(test::tiny_sp_pieces()), {"add_eos_token must be true or false"},
                    R"({"add_eos_token": 1})");
}

}  // namespace
}  // namespace camelid
