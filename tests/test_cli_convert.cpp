// `camelid convert`: against the file llama.cpp's convert_hf_to_gguf.py wrote from the same
// directory (key by key, tensor by tensor, byte by byte), round trips (the GGUF file loads to the
// same weights and logits as the directory, and its tokenizer encodes the corpus the same), the
// command line (errors as one line and status 1, --progress).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "core/gguf.h"
#include "kernels/kernels.h"
#include "gguf_compare.h"
#include "model/gguf_export.h"
#include "model/llama.h"
#include "model_files.h"
#include "model_runs.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_to_gguf.h"

using namespace camelid;
using namespace camelid::test;
namespace fs = std::filesystem;

namespace {

std::string converted_bytes(const std::string& dir, DType type) {
  ExportModel m = export_hf_model(dir, type, [&](int64_t vocab) { return tokenizer_gguf_metadata(dir, vocab); });
  std::vector<DType> types;
  for (const ExportTensor& t : m.tensors) types.push_back(convert_dtype(t, type));
  return gguf_bytes(m, types);
}

std::unique_ptr<gguf::File> parse(const std::string& bytes, const std::string& name) {
  return gguf::File::parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype == b.dtype && a.rows == b.rows && a.cols == b.cols && std::memcmp(a.data, b.data, a.nbytes()) == 0;
}

// Row r of a GGUF q/k matrix is row unpermute(r) of the Hugging Face one (heads of hd rows).
bool same_permuted(const Tensor& gguf, const Tensor& hf, int heads) {
  if (gguf.rows != hf.rows || gguf.cols != hf.cols || gguf.dtype != hf.dtype) return false;
  const int64_t hd = hf.rows / heads;
  for (int64_t r = 0; r < gguf.rows; ++r) {
    const int64_t h = r / hd, rem = r % hd, src = h * hd + (rem % 2) * (hd / 2) + rem / 2;
    if (std::memcmp(gguf.row(r), hf.row(src), gguf.row_nbytes()) != 0) return false;
  }
  return true;
}

const std::vector<int> kPrompt = {1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203, 29889};

}  // namespace

// The strongest check: llama.cpp's converter wrote tiny-llama3-bf16.gguf from this directory.
TEST(Convert, TinyLlama3Bf16IsTheFileLlamaCppsConverterWrote) {
  const std::string ref_bytes = read_file(fixture("gguf/tiny-llama3-bf16.gguf"));
  const std::string ours = converted_bytes(fixture("models/tiny-llama3"), DType::BF16);
  // No key legitimately differs for this directory: general.name ("Tiny Llama3", from the
  // directory's name) and general.size_label ("8.3M") are derived as the converter derives them.
  expect_same_gguf(*parse(ours, "ours"), *parse(ref_bytes, "reference"));
  EXPECT_TRUE(ours == ref_bytes) << "same keys and tensors, yet the files differ (layout, padding)";
}

TEST(Convert, CommandWritesTheSameFileStreamed) {
  TempDir tmp;
  const std::string out = tmp / "l3.gguf";
  const CmdResult r = run_camelid("convert " + q(fixture("models/tiny-llama3")) + " " + q(out) + " --type bf16", true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(read_file(out) == read_file(fixture("gguf/tiny-llama3-bf16.gguf")));
  EXPECT_FALSE(fs::exists(out + ".part"));
}

TEST(Convert, DefaultTypeIsTheCheckpointsOwn) {
  auto f32 = parse(converted_bytes(fixture("models/tiny-llama2"), DType::Count), "l2");
  EXPECT_EQ(f32->get_int("general.file_type", 0, 100), 0);
  EXPECT_EQ(f32->tensor("blk.0.attn_q.weight")->dtype, DType::F32);
  auto bf16 = parse(converted_bytes(fixture("models/tiny-llama3"), DType::Count), "l3");
  EXPECT_EQ(bf16->get_int("general.file_type", 0, 100), 32);
  auto f16 = parse(converted_bytes(fixture("models/tiny-llama3"), DType::F16), "l3");
  EXPECT_EQ(f16->get_int("general.file_type", 0, 100), 1);
  EXPECT_EQ(f16->tensor("token_embd.weight")->dtype, DType::F16);
  EXPECT_EQ(f16->tensor("blk.1.ffn_norm.weight")->dtype, DType::F32);  // 1-D tensors stay F32
  EXPECT_EQ(f16->tensor("rope_freqs.weight")->dtype, DType::F32);
}

// tiny-llama2 is f32 and sharded: the GGUF file must hold the very same weights (q/k rows in
// Meta's order) and compute the same logits. Not bit for bit: GGUF stores eps as float32
// (9.99999975e-06 for 1e-05) and the permuted q/k sum their dot products in another order.
TEST(Convert, F32RoundTripGivesTheSameWeightsAndLogits) {
  TempDir tmp;
  const std::string dir = fixture("models/tiny-llama2"), out = tmp / "l2.gguf";
  const CmdResult r = run_camelid("convert " + q(dir) + " " + q(out) + " --type f32", true);
  ASSERT_EQ(r.status, 0) << r.out;
  auto hf = load_model(dir), gg = load_model(out);
  const ModelConfig &a = hf->config, &b = gg->config;
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.dim, b.dim);
  EXPECT_EQ(a.hidden_dim, b.hidden_dim);
  EXPECT_EQ(a.n_layers, b.n_layers);
  EXPECT_EQ(a.n_heads, b.n_heads);
  EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
  EXPECT_EQ(a.max_seq_len, b.max_seq_len);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(float(a.norm_eps), float(b.norm_eps));
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  EXPECT_EQ(a.bos_id, b.bos_id);
  EXPECT_TRUE(same_bytes(hf->embed, gg->embed));
  EXPECT_TRUE(same_bytes(hf->lm_head, gg->lm_head));
  EXPECT_TRUE(same_bytes(hf->final_norm, gg->final_norm));
  for (int l = 0; l < a.n_layers; ++l) {
    const LayerWeights &x = hf->layers[size_t(l)], &y = gg->layers[size_t(l)];
    EXPECT_TRUE(same_permuted(y.wq, x.wq, a.n_heads)) << l;
    EXPECT_TRUE(same_permuted(y.wk, x.wk, a.n_kv_heads)) << l;
    for (auto [p, q] : {std::pair{&x.wv, &y.wv}, {&x.wo, &y.wo}, {&x.w_gate, &y.w_gate}, {&x.w_up, &y.w_up},
                        {&x.w_down, &y.w_down}, {&x.attn_norm, &y.attn_norm}, {&x.ffn_norm, &y.ffn_norm}})
      EXPECT_TRUE(same_bytes(*p, *q)) << "layer " << l;
  }
  const std::vector<float> la = logits_of(dir, kPrompt), lb = logits_of(out, kPrompt);
  ASSERT_EQ(la.size(), lb.size());
  const size_t V = size_t(a.vocab_size);
  float worst = 0;
  for (size_t i = 0; i < la.size(); ++i) worst = std::max(worst, std::fabs(la[i] - lb[i]));
  EXPECT_LT(worst, 1e-4f);
  for (size_t p = 0; p < kPrompt.size(); ++p)
    EXPECT_EQ(std::max_element(la.begin() + p * V, la.begin() + (p + 1) * V) - la.begin(),
              std::max_element(lb.begin() + p * V, lb.begin() + (p + 1) * V) - lb.begin()) << p;
}

// Llama 3.1's scaling travels as rope_freqs: the GGUF file computes what the directory does.
TEST(Convert, RopeScalingRoundTripsThroughRopeFreqs) {
  TempDir tmp;
  const std::string dir = fixture("models/tiny-llama3"), out = tmp / "l3.gguf";
  ASSERT_EQ(run_camelid("convert " + q(dir) + " " + q(out) + " --type f32").status, 0);
  const std::vector<int> ids = {128000, 791, 4062, 14198, 39935, 35308, 927, 279, 16053, 5679, 13};
  kernels::set_exact(true);  // f32 activations for the bf16 original too (no bf16 dot)
  const std::vector<float> la = logits_of(dir, ids), lb = logits_of(out, ids);
  kernels::set_exact(false);
  ASSERT_EQ(la.size(), lb.size());
  float worst = 0;
  for (size_t i = 0; i < la.size(); ++i) worst = std::max(worst, std::fabs(la[i] - lb[i]));
  EXPECT_LT(worst, 1e-3f);
}

// The tokenizer the GGUF file carries, loaded by camelid, is the directory's.
TEST(Convert, TokenizerMetadataRoundTripsTheCorpus) {
  const nlohmann::json corpus = nlohmann::json::parse(read_file(fixture("tokenizers/corpus.json")));
  ASSERT_GT(corpus.size(), 40u);
  for (const char* name : {"tiny-llama2", "tiny-llama3"}) {
    SCOPED_TRACE(name);
    TempDir tmp;
    const std::string dir = fixture(std::string("models/") + name), out = tmp / "m.gguf";
    ASSERT_EQ(run_camelid("convert " + q(dir) + " " + q(out)).status, 0);
    auto from_dir = Tokenizer::load(dir), from_gguf = Tokenizer::load(out);
    ASSERT_EQ(from_gguf->vocab_size(), from_dir->vocab_size());
    EXPECT_EQ(from_gguf->bos_id(), from_dir->bos_id());
    EXPECT_EQ(from_gguf->adds_bos(), from_dir->adds_bos());
    for (const auto& t : corpus) {
      const std::string text = t;
      for (bool add_special : {false, true})
        for (bool parse_special : {false, true})
          ASSERT_EQ(from_gguf->encode(text, add_special, parse_special), from_dir->encode(text, add_special, parse_special))
              << text.substr(0, 60) << " add_special=" << add_special << " parse_special=" << parse_special;
      const std::vector<int> ids = from_dir->encode(text, false, true);
      EXPECT_EQ(from_gguf->decode(ids), from_dir->decode(ids));
    }
    // The chat template travels too.
    auto f = gguf::File::open(out);
    EXPECT_FALSE(f->get_string("tokenizer.chat_template", "").empty());
  }
}

TEST(Convert, Llama2TokenizerKeysAreTheConvertersOnes) {
  auto f = parse(converted_bytes(fixture("models/tiny-llama2"), DType::F32), "l2");
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f->get_string("tokenizer.ggml.pre"), "default");
  EXPECT_EQ(f->get_strings("tokenizer.ggml.tokens").size(), 32000u);
  // tokenizer_config.json's added_tokens_decoder makes <unk> <s> </s> control tokens of score
  // -1000, as _create_vocab_sentencepiece does.
  EXPECT_EQ(f->get_ints("tokenizer.ggml.token_type")[0], 3);
  EXPECT_EQ(f->get_floats("tokenizer.ggml.scores")[1], -1000.0);
  EXPECT_EQ(f->get_ints("tokenizer.ggml.token_type")[3], 6);  // <0x00>: byte
  EXPECT_EQ(f->get_int("tokenizer.ggml.bos_token_id", 0, 1 << 20), 1);
  EXPECT_EQ(f->get_int("tokenizer.ggml.eos_token_id", 0, 1 << 20), 2);
  EXPECT_EQ(f->get_int("tokenizer.ggml.unknown_token_id", 0, 1 << 20), 0);
  EXPECT_TRUE(f->get_bool("tokenizer.ggml.add_bos_token", false));
  EXPECT_FALSE(f->get_bool("tokenizer.ggml.add_eos_token", true));
  EXPECT_EQ(f->tensor("output.weight")->ne, (std::vector<int64_t>{64, 32000}));  // untied
}

TEST(Convert, DirectoryWithoutTokenizerConvertsWithAWarning) {
  TempDir tmp;
  RandomModelSpec s = small_spec();
  write_random_model(tmp / "m", s);
  const CmdResult r = run_camelid("convert " + q(tmp / "m") + " " + q(tmp / "m.gguf") + " --progress", true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("warning:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tensor 21/21"), std::string::npos) << r.out;  // --progress draws the bar off a terminal
  auto f = gguf::File::open(tmp / "m.gguf");
  EXPECT_EQ(f->find("tokenizer.ggml.model"), nullptr);
  EXPECT_NO_THROW(load_model(tmp / "m.gguf"));
}

// Mistakes: one line on stderr, status 1, and no output file left behind.
TEST(Convert, ErrorsAreOneLineAndStatusOne) {
  TempDir tmp;
  const std::string dir = fixture("models/tiny-llama2");
  spit(tmp / "notes.txt", "hello\n");
  const std::pair<std::string, std::string> cases[] = {
      {"convert " + q(dir) + " " + q(tmp / "a.gguf") + " --type q4_0", "--type"},
      {"convert " + q(tmp.str()) + " " + q(tmp / "b.gguf"), "config.json"},
      {"convert " + q(tmp / "notes.txt") + " " + q(tmp / "c.gguf"), "notes.txt"},
      {"convert " + q(dir) + " " + q(tmp / "no-such-dir/d.gguf"), "no-such-dir/d.gguf"},
  };
  for (auto& [args, mention] : cases) {
    const CmdResult r = run_camelid(args, true);
    EXPECT_EQ(r.status, 1) << args << "\n" << r.out;
    EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_NE(r.out.find(mention), std::string::npos) << r.out;
  }
  for (auto& e : fs::directory_iterator(tmp.str())) EXPECT_EQ(e.path().extension(), ".txt") << e.path();
}
