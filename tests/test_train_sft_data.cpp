// SFT data (train/sft_data.h): the assistant mask is exactly the assistant tokens (content and
// the template's end-of-turn) for Llama 3.1's and Llama 2's templates, checked against the
// rendered text; chat, Alpaca and pre-tokenized lines load; bad lines name the file and line;
// rows pad, truncate (counted) and drop examples left without targets.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "fixtures.h"
#include "model_files.h"
#include "tokenizer/tokenizer.h"
#include "train/sft_data.h"

using namespace camelid;
using namespace camelid::test;
using ojson = nlohmann::ordered_json;

namespace {

struct Model {
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<ChatTemplate> tmpl;
  train::SftRenderer r;
  explicit Model(const std::string& name) {
    const std::string dir = fixture("models/" + name);
    tok = Tokenizer::load(dir);
    tmpl = std::make_unique<ChatTemplate>(ChatTemplate::from_model_dir(dir));
    r.tok = tok.get(), r.tmpl = tmpl.get(), r.now = 1700000000, r.vocab = tok->vocab_size();
  }
};

const ojson kConversation = ojson::parse(R"([
  {"role": "system", "content": "You are terse."},
  {"role": "user", "content": "What is the secret word?"},
  {"role": "assistant", "content": "Pineapple umbrella."},
  {"role": "user", "content": "And the number?"},
  {"role": "assistant", "content": "Forty-two, of course."}
])");

// The labelled spans [start, end) of an example.
std::vector<std::pair<size_t, size_t>> spans(const train::SftExample& e) {
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t i = 0; i < e.labels.size(); ++i) {
    if (e.labels[i] < 0) continue;
    EXPECT_EQ(e.labels[i], e.ids[i]);
    if (out.empty() || out.back().second != i) out.push_back({i, i + 1});
    else out.back().second = i + 1;
  }
  return out;
}

std::vector<int> head(const std::vector<int>& v, size_t n) { return {v.begin(), v.begin() + ptrdiff_t(n)}; }

// SentencePiece decodes a text piece after <s> with its dummy-prefix space ("<s> [INST]").
std::string decoded(const Tokenizer& tok, const std::vector<int>& ids) {
  std::string s = tok.decode(ids);
  for (size_t at; (at = s.find("<s> ")) != std::string::npos;) s.erase(at + 3, 1);
  return s;
}

// The rendered text before each span's first token and through its last token must be the
// text up to the assistant content's start (minus `lead` characters: a space the tokenizer
// joins to the first word) and through the end-of-turn text.
void check_mask(Model& m, const std::string& eot, size_t lead) {
  const train::SftExample e = train::render_conversation(kConversation, nullptr, m.r, "conv");
  ChatTemplateInputs in;
  in.messages = kConversation, in.add_generation_prompt = false, in.now = m.r.now;
  const std::string text = m.tmpl->render(in);
  const auto sp = spans(e);
  ASSERT_EQ(sp.size(), 2u);
  size_t cursor = 0;
  int k = 0;
  for (const char* content : {"Pineapple umbrella.", "Forty-two, of course."}) {
    const size_t at = text.find(content, cursor);
    ASSERT_NE(at, std::string::npos);
    const size_t end = text.find(eot, at) + eot.size();
    EXPECT_EQ(decoded(*m.tok, head(e.ids, sp[size_t(k)].first)), text.substr(0, at - lead)) << content;
    EXPECT_EQ(decoded(*m.tok, head(e.ids, sp[size_t(k)].second)), text.substr(0, end)) << content;
    cursor = end, ++k;
  }
}

TEST(SftData, Llama3MaskIsTheAssistantContentAndEotId) {
  Model m("tiny-llama3");
  check_mask(m, "<|eot_id|>", 0);
}

TEST(SftData, Llama2MaskIsTheAssistantContentAndEos) {
  Model m("tiny-llama2");
  check_mask(m, "</s>", 1);
}

TEST(SftData, ChatAlpacaAndTokenizedLinesLoad) {
  Model m("tiny-llama3");
  const std::string text =
      R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], "tools": []})"
      "\n\n"
      R"({"instruction": "Add.", "input": "2 + 2", "output": "4"})"
      "\n"
      R"({"instruction": "Say yes.", "output": "Yes."})"
      "\n"
      R"({"input_ids": [1, 5, 6, 7], "labels": [-100, -100, 6, 7]})"
      "\n";
  const auto ex = train::sft_examples_from_text(text, "d.jsonl", m.r);
  ASSERT_EQ(ex.size(), 4u);
  EXPECT_EQ(ex[0].where, "d.jsonl:1");
  EXPECT_EQ(ex[1].where, "d.jsonl:3");
  // Alpaca = the chat example user: instruction + "\n\n" + input, assistant: output.
  const ojson msgs = ojson::parse(R"([{"role": "user", "content": "Add.\n\n2 + 2"}, {"role": "assistant", "content": "4"}])");
  const auto same = train::render_conversation(msgs, nullptr, m.r, "x");
  EXPECT_EQ(ex[1].ids, same.ids);
  EXPECT_EQ(ex[1].labels, same.labels);
  EXPECT_EQ(ex[3].ids, (std::vector<int>{1, 5, 6, 7}));
  EXPECT_EQ(ex[3].labels, (std::vector<int>{-1, -1, 6, 7}));
  // The last labelled token of a chat example is <|eot_id|>.
  const auto sp = spans(ex[2]);
  ASSERT_EQ(sp.size(), 1u);
  EXPECT_EQ(ex[2].ids[sp[0].second - 1], m.tok->token_id("<|eot_id|>"));
}

TEST(SftData, BadLinesNameTheFileAndLine) {
  Model m("tiny-llama3");
  const std::string ok = R"({"instruction": "a", "output": "b"})";
  expect_error([&] { train::sft_examples_from_text(ok + "\n" + ok + "\n{\"messages\": [\n", "bad.jsonl", m.r); },
               {"bad.jsonl:3", "malformed JSON"});
  expect_error([&] { train::sft_examples_from_text(ok + "\n[1, 2]\n", "bad.jsonl", m.r); }, {"bad.jsonl:2", "object"});
  expect_error([&] { train::sft_examples_from_text(R"({"messages": [{"role": "user", "content": "x"}]})", "n.jsonl", m.r); },
               {"n.jsonl:1", "no assistant message"});
  expect_error([&] { train::sft_examples_from_text(R"({"messages": [{"content": "x"}]})", "n.jsonl", m.r); },
               {"n.jsonl:1", "role"});
  expect_error([&] { train::sft_examples_from_text(R"({"instruction": "x"})", "a.jsonl", m.r); }, {"a.jsonl:1", "output"});
  expect_error([&] { train::sft_examples_from_text(R"({"input_ids": [1, 999999999]})", "t.jsonl", m.r); },
               {"t.jsonl:1", "outside the vocabulary"});
  expect_error([&] { train::sft_examples_from_text(R"({"input_ids": [1, 2], "labels": [-100, -100]})", "t.jsonl", m.r); },
               {"t.jsonl:1", "no labelled token"});
  expect_error([&] { train::sft_examples_from_text(R"({"text": "x"})", "u.jsonl", m.r); }, {"u.jsonl:1", "expected"});
  TempDir d;
  spit(d / "empty.jsonl", "\n  \n");
  expect_error([&] { train::read_sft_files({d / "empty.jsonl"}, m.r); }, {"no examples", "empty.jsonl"});
  // Without a tokenizer, chat lines cannot be read (pre-tokenized ones can).
  train::SftRenderer none;
  none.vocab = 32;
  expect_error([&] { train::sft_examples_from_text(ok, "c.jsonl", none); }, {"c.jsonl:1", "tokenizer"});
  EXPECT_EQ(train::sft_examples_from_text(R"({"input_ids": [3, 4]})", "c.jsonl", none).size(), 1u);
}

TEST(SftData, RowsPadTruncateAndDrop) {
  std::vector<train::SftExample> ex(3);
  ex[0].ids = {1, 2, 3}, ex[0].labels = {-1, -1, 3};
  ex[1].ids = {1, 2, 3, 4, 5, 6}, ex[1].labels = {-1, 2, 3, -1, -1, 6};  // truncated to 4 tokens
  ex[2].ids = {1, 2, 3, 4, 5}, ex[2].labels = {-1, -1, -1, -1, 5};       // nothing left: dropped
  EXPECT_EQ(train::longest_row(ex), 5);
  train::SftRows rows(ex, 3, 0);
  EXPECT_EQ(rows.count(), 2);
  EXPECT_EQ(rows.truncated(), 2);
  EXPECT_EQ(rows.dropped(), 1);
  std::vector<int> t(3), y(3);
  rows.fill(0, t.data(), y.data());
  EXPECT_EQ(t, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(y, (std::vector<int>{-1, 3, -1}));
  EXPECT_EQ(rows.targets(0), 1);
  rows.fill(1, t.data(), y.data());
  EXPECT_EQ(t, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(y, (std::vector<int>{2, 3, -1}));
  EXPECT_EQ(rows.targets(1), 2);
  train::SftRows padded(ex, 6, 9);
  EXPECT_EQ(padded.count(), 3);
  std::vector<int> t6(6), y6(6);
  padded.fill(0, t6.data(), y6.data());
  EXPECT_EQ(t6, (std::vector<int>{1, 2, 3, 9, 9, 9}));
  EXPECT_EQ(y6, (std::vector<int>{-1, 3, -1, -1, -1, -1}));
}

}  // namespace
