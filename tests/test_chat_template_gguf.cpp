// Chat templates from GGUF files: tokenizer.chat_template of the fixture GGUFs (copied there from
// the models' tokenizer_config.json) renders the reference prompts, with bos/eos texts from the
// file's tokenizer; without one, the family's fallback; a broken one is an Error naming the file.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "chat/chat_prompt.h"
#include "chat/chat_template.h"
#include "core/error.h"
#include "core/gguf.h"
#include "fixtures.h"
#include "gguf_tokenizer_files.h"
#include "tokenizer/loaders.h"

namespace camelid {
namespace {

using json = nlohmann::ordered_json;

void check_reference(const char* ref_file, const char* gguf_file, const char* bos, const char* eos) {
  auto f = gguf::File::open(test::fixture(gguf_file));
  const Tokenizer tok(tokenizer_spec_from_gguf(*f));
  const ChatTemplate t = ChatTemplate::from_gguf(*f, tok);
  EXPECT_FALSE(t.is_fallback());
  EXPECT_EQ(t.bos_token(), bos);
  EXPECT_EQ(t.eos_token(), eos);
  std::ifstream in(test::fixture(ref_file));
  const json ref = json::parse(in);
  int rendered = 0;
  for (const json& c : ref["cases"]) {
    if (!c.contains("rendered")) continue;
    ChatTemplateInputs inputs;
    inputs.messages = c["messages"];
    inputs.add_generation_prompt = c.value("add_generation_prompt", true);
    EXPECT_EQ(t.render(inputs), c["rendered"].get<std::string>()) << c["messages"].dump();
    ++rendered;
  }
  EXPECT_GE(rendered, 3);
}

TEST(ChatTemplateGguf, Llama2MatchesReference) {
  check_reference("reference/public-chat-llama2.json", "gguf/qmix-q8_0.gguf", "<s>", "</s>");
}
TEST(ChatTemplateGguf, Llama31MatchesReference) {
  check_reference("reference/public-chat-llama3.json", "gguf/tiny-llama3-bf16.gguf", "<|begin_of_text|>", "<|eot_id|>");
}

TEST(ChatTemplateGguf, EndOfTurnIdsComeFromTheFile) {
  test::GgufBytes g(test::tiny_byte_level_gguf().bytes());
  const Tokenizer tok(tokenizer_spec_from_gguf(*g.file));
  EXPECT_EQ(end_of_turn_ids(tok, {}), (std::vector<int>{260, 261, 262}));  // eos, eot, eom
}

TEST(ChatTemplateGguf, FallbackAndErrors) {
  test::GgufBytes g(test::tiny_byte_level_gguf().bytes());  // no tokenizer.chat_template
  const Tokenizer tok(tokenizer_spec_from_gguf(*g.file));
  const ChatTemplate t = ChatTemplate::from_gguf(*g.file, tok);
  EXPECT_TRUE(t.is_fallback());
  EXPECT_EQ(t.bos_token(), "<|begin_of_text|>");
  EXPECT_EQ(t.eos_token(), "<|end_of_text|>");  // the file's eos
  ChatTemplateInputs in;
  in.messages = json::parse(R"([{"role": "user", "content": "hi"}])");
  EXPECT_NE(t.render(in).find("<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"), std::string::npos);

  test::GgufMeta m = test::tiny_sp_gguf();
  m.set("tokenizer.chat_template", test::gguf_string("{% for m in messages %}"));  // unclosed
  test::GgufBytes bad(m.bytes());
  const Tokenizer sp(tokenizer_spec_from_gguf(*bad.file));
  try {
    ChatTemplate::from_gguf(*bad.file, sp);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tiny.gguf: chat_template: "), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace camelid
