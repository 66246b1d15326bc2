// A lone .gguf file through the real binary: every command finds weights, tokenizer and chat
// template in it (no files beside it), as llama.cpp and ollama users will run camelid.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <httplib.h>

#include "cli_runner.h"
#include "server_process.h"

using namespace camelid::test;
using json = nlohmann::json;

namespace {

std::string gguf(const std::string& name) { return q(fixture("gguf/" + name)); }

json reference(const std::string& name) {
  std::ifstream in(fixture("reference/public-gguf-" + name + ".json"));
  return json::parse(in);
}

std::string ids_csv(const json& ids) {
  std::string s;
  for (int id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

TEST(CliGguf, InfoListsTypesMetadataAndKvBytes) {
  auto r = run_camelid("info -m " + gguf("qmix-q4_k_m.gguf") + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  json j = json::parse(r.out);
  EXPECT_EQ(j["format"], "gguf");
  EXPECT_EQ(j["dtype"], "q6_k");  // the type holding most parameters: here the 32000-row embedding
  EXPECT_EQ(j["types"]["q6_k"]["tensors"], 13);  // attn_v and ffn_down of 6 layers, and token_embd
  EXPECT_EQ(j["types"]["q4_k"]["tensors"], 84 - 12);
  EXPECT_EQ(j["gguf"]["metadata"]["general.architecture"], "\"llama\"");
  EXPECT_EQ(j["gguf"]["version"], 3);
  // 12 layers x 2 (k, v) x kv_dim 128.
  EXPECT_EQ(j["kv_bytes_per_token"]["f32"], 12 * 2 * 128 * 4);
  EXPECT_EQ(j["kv_bytes_per_token"]["f16"], 12 * 2 * 128 * 2);
  EXPECT_EQ(j["kv_bytes_per_token"]["q8_0"], 12 * 2 * 4 * 34);
  size_t bytes = 0, params = 0;
  for (auto& [t, c] : j["types"].items()) bytes += c["bytes"].get<size_t>(), params += c["parameters"].get<size_t>();
  EXPECT_EQ(bytes, j["weight_bytes"].get<size_t>());
  EXPECT_EQ(params, j["parameters"].get<size_t>());
  r = run_camelid("info -m " + gguf("qmix-q4_k_m.gguf"));
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("tokenizer.ggml.model = \"llama\""), std::string::npos);
}

TEST(CliGguf, TokenizeWithTheFilesOwnTokenizer) {
  const std::string text = "Hello world, ça va? <|eot_id|>";
  auto a = run_camelid("tokenize -m " + gguf("tiny-llama3-bf16.gguf") + " --text " + q(text) + " --json");
  auto b = run_camelid("tokenize -m " + q(fixture("tokenizers/llama3/tokenizer.json")) + " --text " + q(text) + " --json");
  ASSERT_EQ(a.status, 0) << a.out;
  EXPECT_EQ(a.out, b.out);
  a = run_camelid("tokenize -m " + gguf("qmix-q8_0.gguf") + " --text " + q(text) + " --json");
  b = run_camelid("tokenize -m " + q(fixture("tokenizers/llama2/tokenizer.json")) + " --text " + q(text) + " --json");
  ASSERT_EQ(a.status, 0) << a.out;
  EXPECT_EQ(a.out, b.out);
}

TEST(CliGguf, TemplateFromTheFile) {
  const std::string m = write_temp("msgs.json", R"([{"role":"user","content":"hi"}])");
  auto r = run_camelid("template -m " + gguf("qmix-q8_0.gguf") + " --messages " + m);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "<s>[INST] hi [/INST]");
  r = run_camelid("template -m " + gguf("tiny-llama3-q8_0.gguf") + " --messages " + m);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"), std::string::npos) << r.out;
  std::filesystem::remove(m);
}

TEST(CliGguf, PerplexityExactMatchesTheReference) {
  for (const char* name : {"qmix-mixed", "tiny-llama3-q8_0"}) {
    const json p = reference(name)["prompts"][0];
    const std::string f = write_temp("ids.json", p["ids"].dump());
    auto r = run_camelid("perplexity -m " + gguf(std::string(name) + ".gguf") + " --ids-file " + f + " --exact --json");
    std::filesystem::remove(f);
    ASSERT_EQ(r.status, 0) << r.out;
    const double ref = p["mean_nll"].get<double>();
    EXPECT_NEAR(json::parse(r.out)["mean_nll"].get<double>(), ref, 1e-4 * ref) << name;
  }
}

TEST(CliGguf, GenerateFromTextAndFromIds) {
  const json p = reference("qmix-q4_k_m")["prompts"][0];
  auto r = run_camelid("generate -m " + gguf("qmix-q4_k_m.gguf") + " --ids " + ids_csv(p["ids"]) + " -n 2 --temp 0 --exact --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const json j = json::parse(r.out);
  if (p["greedy_margins"][0].get<double>() > 2e-3) {
    EXPECT_EQ(j["ids"][0], p["greedy"][0]);
  }
  r = run_camelid("generate -m " + gguf("tiny-llama3-bf16.gguf") + " -p Hello -n 4 --temp 0 --kv-type f16 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(json::parse(r.out)["ids"].size(), 4u);
  r = run_camelid("generate -m " + gguf("tiny-llama3-bf16.gguf") + " -p Hello -n 4 --kv-type q8_0", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("KV cache type q8_0 needs a head size that is a multiple of 32"), std::string::npos) << r.out;
}

TEST(CliGguf, ChatBenchAndServe) {
  const std::string input = write_temp("chat.txt", "Hello there\n/quit\n");
  auto r = run_camelid("chat -m " + gguf("tiny-llama3-q8_0.gguf") + " --temp 0 -n 4 --ctx 256 < " + q(input), true);
  std::filesystem::remove(input);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("[context: "), std::string::npos) << r.out;

  r = run_camelid("bench -m " + gguf("qmix-q4_k_m.gguf") + " -p 8 -n 4 --reps 1 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const json b = json::parse(r.out);
  EXPECT_GT(b["decode_tok_s"].get<double>(), 0);
  EXPECT_GT(b["decode_gb_s"].get<double>(), 0);

  ServerProcess server("-m " + gguf("tiny-llama3-q8_0.gguf") + " --parallel 2 --ctx 256");
  httplib::Client c("127.0.0.1", server.port());
  const json req = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 4}, {"temperature", 0}};
  auto res = c.Post("/v1/chat/completions", req.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body);
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 5);  // the file's Llama 3.1 template was applied
  EXPECT_LE(j["usage"]["completion_tokens"].get<int>(), 4);
}

}  // namespace
