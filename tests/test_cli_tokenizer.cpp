// tokenize / detokenize and the text forms of generate and perplexity, through the binary.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

using namespace camelid::test;
using json = nlohmann::json;

namespace {

TEST(CliTokenizer, BatchMatchesReferenceIds) {
  for (const char* name : {"llama2", "llama3"}) {
    std::ifstream in(fixture(std::string("reference/public-tok-") + name + ".json"));
    const json ref = json::parse(in);
    json texts = json::array();
    for (const json& c : ref["cases"]) texts.push_back(c["text"]);
    const std::string batch = write_temp(std::string(name) + ".json", texts.dump());
    const std::string tok = q(fixture(std::string("tokenizers/") + name + "/tokenizer.json"));
    auto r = run_camelid("tokenize -m " + tok + " --batch " + q(batch) + " --parse-special");
    ASSERT_EQ(r.status, 0) << r.out;
    const json got = json::parse(r.out);
    ASSERT_EQ(got.size(), ref["cases"].size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], ref["cases"][i]["ids_with_special"]) << name << " case " << i;
    r = run_camelid("tokenize -m " + tok + " --batch " + q(batch) + " --no-bos --parse-special");
    ASSERT_EQ(r.status, 0);
    EXPECT_EQ(json::parse(r.out)[8], ref["cases"][8]["ids"]);
  }
}

TEST(CliTokenizer, StdinJsonAndDetokenize) {
  const std::string m = q(fixture("models/tiny-llama3"));
  auto r = run_camelid("tokenize -m " + m + " --json --no-bos < " + q(write_temp("in.txt", "Hello world<|eot_id|>")));
  ASSERT_EQ(r.status, 0) << r.out;
  const json ids = json::parse(r.out)["ids"];
  EXPECT_EQ(std::find(ids.begin(), ids.end(), 128009), ids.end()) << "special text must stay text by default";
  std::string csv;
  for (int id : ids) csv += (csv.empty() ? "" : ",") + std::to_string(id);
  r = run_camelid("detokenize -m " + m + " --ids " + csv + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(json::parse(r.out)["text"], "Hello world<|eot_id|>");
  r = run_camelid("tokenize -m " + m + " --text '<|eot_id|>' --no-bos --parse-special --json");
  EXPECT_EQ(json::parse(r.out)["ids"], json::array({128009}));
}

TEST(CliTokenizer, GenerateAndPerplexityOnText) {
  const std::string m = q(fixture("models/tiny-llama2"));
  const std::string text = "Once upon a time, a llama";
  auto t = run_camelid("tokenize -m " + m + " --text '" + text + "' --json");
  ASSERT_EQ(t.status, 0);
  const json ids = json::parse(t.out)["ids"];
  std::string csv;
  for (int id : ids) csv += (csv.empty() ? "" : ",") + std::to_string(id);

  auto a = run_camelid("generate -m " + m + " -p '" + text + "' -n 6 --temp 0 --json");
  auto b = run_camelid("generate -m " + m + " --ids " + csv + " -n 6 --temp 0 --json");
  ASSERT_EQ(a.status, 0) << a.out;
  ASSERT_EQ(b.status, 0) << b.out;
  const json ja = json::parse(a.out), jb = json::parse(b.out);
  EXPECT_EQ(ja["ids"], jb["ids"]);
  EXPECT_EQ(ja["prompt_tokens"], ids.size());
  ASSERT_TRUE(ja.contains("text"));
  auto d = run_camelid("detokenize -m " + m + " --skip-special --json --ids " + [&] {
    std::string s;
    for (int id : ja["ids"]) s += (s.empty() ? "" : ",") + std::to_string(id);
    return s;
  }());
  EXPECT_EQ(ja["text"], json::parse(d.out)["text"]);

  auto p1 = run_camelid("perplexity -m " + m + " -f " + q(write_temp("ppl.txt", text)) + " --json");
  auto p2 = run_camelid("perplexity -m " + m + " --ids-file " + q(write_temp("ppl.ids", ids.dump())) + " --json");
  ASSERT_EQ(p1.status, 0) << p1.out;
  EXPECT_EQ(json::parse(p1.out), json::parse(p2.out));
}

TEST(CliTokenizer, ClearErrors) {
  auto r = run_camelid("generate -m " + q(fixture("models/stories260K/stories260K.bin")) + " -p hi -n 2", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("no tokenizer.json or tokenizer.model"), std::string::npos) << r.out;
  r = run_camelid("tokenize -m /nonexistent --text hi", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("error: /nonexistent"), std::string::npos) << r.out;
  r = run_camelid("detokenize -m " + q(fixture("models/tiny-llama3")) + " --ids 1,999999", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("out of range"), std::string::npos) << r.out;
}

}  // namespace
