// `camelid quantize`: byte identity with llama-quantize's output for the same input, its
// per-tensor mixtures (checked against qmix-q4_k_m.gguf and rule by rule on model shapes), every
// type end to end (quantize, load, logits close to the float model's), and the command line.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "cli_runner.h"
#include "core/gguf.h"
#include "gguf_compare.h"
#include "model/gguf_export.h"
#include "model/llama.h"
#include "model_files.h"
#include "model_runs.h"

using namespace camelid;
using namespace camelid::test;
namespace fs = std::filesystem;

namespace {

// A model whose every row length is a multiple of 256 (k-quants apply everywhere): dim 256,
// ffn 512, 4 heads of 64 with 2 kv heads, vocab 256, 2 layers, untied.
RandomModelSpec kquant_spec() {
  RandomModelSpec s;
  ModelConfig& c = s.config;
  c.vocab_size = 256, c.dim = 256, c.hidden_dim = 512, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2;
  c.head_dim = 64, c.max_seq_len = 64, c.bos_id = 1, c.eos_ids = {2};
  return s;
}

// Tensor names and shapes of a Llama in GGUF order, without data (for the type rules).
ExportModel shape_only(int layers, int dim, int hidden, int heads, int kv_heads, int vocab, bool tied) {
  ExportModel m;
  m.n_layers = layers, m.n_heads = heads, m.n_kv_heads = kv_heads;
  const int kv = dim / heads * kv_heads;
  auto add = [&](const std::string& name, std::vector<int64_t> ne) {
    ExportTensor t;
    t.name = name, t.ne = std::move(ne), t.dtype = DType::F16;
    m.tensors.push_back(t);
  };
  add("token_embd.weight", {dim, vocab});
  if (!tied) add("output.weight", {dim, vocab});
  add("output_norm.weight", {dim});
  for (int l = 0; l < layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", {dim});
    add(p + "attn_q.weight", {dim, dim});
    add(p + "attn_k.weight", {dim, kv});
    add(p + "attn_v.weight", {dim, kv});
    add(p + "attn_output.weight", {dim, dim});
    add(p + "ffn_norm.weight", {dim});
    add(p + "ffn_gate.weight", {dim, hidden});
    add(p + "ffn_up.weight", {dim, hidden});
    add(p + "ffn_down.weight", {hidden, dim});
  }
  for (auto& t : m.tensors)
    if (t.ne.size() == 1) t.dtype = DType::F32;
  return m;
}

// name -> chosen type, for a file type on a shape.
std::map<std::string, DType> recipe(ExportModel m, const char* type) {
  const QuantType& q = quant_type_from_name(type);
  prepare_for_quantize(m, q);
  const std::vector<DType> types = quantize_recipe(m, q);
  std::map<std::string, DType> out;
  for (size_t i = 0; i < types.size(); ++i) out[m.tensors[i].name] = types[i];
  return out;
}

std::string blk(int l, const char* what) { return "blk." + std::to_string(l) + "." + what + ".weight"; }

}  // namespace

// llama-quantize Q8_0 made tiny-llama3-q8_0.gguf from tiny-llama3-bf16.gguf.
TEST(Quantize, Q8_0IsTheFileLlamaQuantizeWrote) {
  TempDir tmp;
  const std::string out = tmp / "q8.gguf";
  const CmdResult r = run_camelid("quantize " + q(fixture("gguf/tiny-llama3-bf16.gguf")) + " " + q(out) + " Q8_0 --threads 2", true);
  ASSERT_EQ(r.status, 0) << r.out;
  auto ours = gguf::File::open(out), ref = gguf::File::open(fixture("gguf/tiny-llama3-q8_0.gguf"));
  expect_same_gguf(*ours, *ref);
  EXPECT_TRUE(read_file(out) == read_file(fixture("gguf/tiny-llama3-q8_0.gguf")));
}

// qmix-q4_k_m.gguf is llama-quantize's Q4_K_M of a 12-layer model: the same types tensor by tensor
// (from its Q8_0 sibling; the bytes differ since that source is not the original), and the
// metadata key by key.
TEST(Quantize, Q4_K_MChoosesLlamaCppsTypesOnQmix) {
  ExportModel m = export_gguf_model(fixture("gguf/qmix-q8_0.gguf"));
  const QuantType& q = quant_type_from_name("Q4_K_M");
  prepare_for_quantize(m, q);
  const std::vector<DType> types = quantize_recipe(m, q);
  auto ref = gguf::File::open(fixture("gguf/qmix-q4_k_m.gguf"));
  ASSERT_EQ(types.size(), ref->tensors().size());
  const std::set<int> more_bits = {0, 3, 6, 9, 10, 11};  // use_more_bits(i, 12), as the fixture README lists
  for (size_t i = 0; i < types.size(); ++i) {
    const ExportTensor& t = m.tensors[i];
    EXPECT_EQ(t.name, ref->tensors()[i].name);
    EXPECT_EQ(types[i], ref->tensors()[i].dtype) << t.name;
    DType want = DType::Q4_K;
    if (t.ne.size() == 1) want = DType::F32;
    else if (t.name == "token_embd.weight") want = DType::Q6_K;  // tied: it is the classifier
    else
      for (int l : more_bits)
        if (t.name == blk(l, "attn_v") || t.name == blk(l, "ffn_down")) want = DType::Q6_K;
    EXPECT_EQ(types[i], want) << t.name;
  }
  const std::string bytes = gguf_bytes(m, types);
  expect_same_gguf(*gguf::File::parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "ours"), *ref, {},
                   /*compare_data=*/false);
}

// The rules on a Llama 3 8B shape (32 layers, GQA 4, untied) and a 70B one (80 layers).
TEST(Quantize, MixturesFollowLlamaCppsRules) {
  const ExportModel l8 = shape_only(32, 4096, 14336, 32, 8, 128256, false);
  const std::set<int> more_bits = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
  auto q4km = recipe(l8, "Q4_K_M");
  EXPECT_EQ(q4km["output.weight"], DType::Q6_K);
  EXPECT_EQ(q4km["token_embd.weight"], DType::Q4_K);
  EXPECT_EQ(q4km["output_norm.weight"], DType::F32);  // 1-D tensors are copied as they are
  for (int l = 0; l < 32; ++l) {
    const DType v = more_bits.count(l) ? DType::Q6_K : DType::Q4_K;
    EXPECT_EQ(q4km[blk(l, "attn_v")], v) << l;
    EXPECT_EQ(q4km[blk(l, "ffn_down")], v) << l;
    EXPECT_EQ(q4km[blk(l, "attn_q")], DType::Q4_K) << l;
  }
  auto q3km = recipe(l8, "Q3_K_M");
  EXPECT_EQ(q3km[blk(0, "attn_v")], DType::Q5_K);
  EXPECT_EQ(q3km[blk(1, "attn_v")], DType::Q5_K);
  EXPECT_EQ(q3km[blk(2, "attn_v")], DType::Q4_K);
  EXPECT_EQ(q3km[blk(1, "ffn_down")], DType::Q5_K);
  EXPECT_EQ(q3km[blk(2, "ffn_down")], DType::Q4_K);
  EXPECT_EQ(q3km[blk(5, "attn_output")], DType::Q4_K);
  EXPECT_EQ(q3km[blk(5, "ffn_up")], DType::Q3_K);
  auto q3kl = recipe(l8, "Q3_K_L");
  EXPECT_EQ(q3kl[blk(7, "attn_v")], DType::Q5_K);
  EXPECT_EQ(q3kl[blk(7, "ffn_down")], DType::Q5_K);
  EXPECT_EQ(q3kl[blk(7, "attn_output")], DType::Q5_K);
  EXPECT_EQ(recipe(l8, "Q3_K_S")[blk(0, "attn_v")], DType::Q3_K);
  auto q2k = recipe(l8, "Q2_K");
  EXPECT_EQ(q2k[blk(9, "attn_v")], DType::Q4_K);  // 4 query heads per kv head
  EXPECT_EQ(q2k[blk(9, "ffn_down")], DType::Q3_K);
  EXPECT_EQ(q2k[blk(9, "attn_output")], DType::Q3_K);
  EXPECT_EQ(q2k[blk(9, "ffn_gate")], DType::Q2_K);
  EXPECT_EQ(q2k["output.weight"], DType::Q6_K);
  auto q4ks = recipe(l8, "Q4_K_S");
  EXPECT_EQ(q4ks[blk(3, "attn_v")], DType::Q5_K);
  EXPECT_EQ(q4ks[blk(4, "attn_v")], DType::Q4_K);
  EXPECT_EQ(q4ks[blk(3, "ffn_down")], DType::Q5_K);
  EXPECT_EQ(q4ks[blk(4, "ffn_down")], DType::Q4_K);
  auto q5km = recipe(l8, "Q5_K_M");
  EXPECT_EQ(q5km[blk(27, "attn_v")], DType::Q6_K);
  EXPECT_EQ(q5km[blk(26, "ffn_down")], DType::Q5_K);
  auto iq4xs = recipe(l8, "IQ4_XS");
  EXPECT_EQ(iq4xs[blk(20, "attn_v")], DType::Q5_K);
  EXPECT_EQ(iq4xs[blk(3, "ffn_down")], DType::Q5_K);
  EXPECT_EQ(iq4xs[blk(4, "ffn_down")], DType::IQ4_XS);
  EXPECT_EQ(iq4xs["output.weight"], DType::Q6_K);
  auto q8 = recipe(l8, "Q8_0");
  for (auto& [name, t] : q8) EXPECT_EQ(t, name.find("norm") != std::string::npos ? DType::F32 : DType::Q8_0) << name;
  auto q4_0 = recipe(l8, "Q4_0");
  EXPECT_EQ(q4_0["output.weight"], DType::Q6_K);
  EXPECT_EQ(q4_0[blk(0, "attn_v")], DType::Q4_0);
  // MHA (Llama 2 7B): no GQA bonus for attn_v under Q2_K / IQ4_NL.
  const ExportModel l2 = shape_only(32, 4096, 11008, 32, 32, 32000, false);
  EXPECT_EQ(recipe(l2, "Q2_K")[blk(9, "attn_v")], DType::Q3_K);
  EXPECT_EQ(recipe(l2, "IQ4_NL")[blk(9, "attn_v")], DType::IQ4_NL);
  // llama.cpp's "70B": 80 layers with GQA: attn_v never below Q5_K.
  const ExportModel l70 = shape_only(80, 8192, 28672, 64, 8, 128256, false);
  EXPECT_EQ(recipe(l70, "Q4_K_M")[blk(40, "attn_v")], DType::Q5_K);  // (40 - 10) % 3 == 0: not more bits
  EXPECT_EQ(recipe(l70, "Q4_K_M")[blk(42, "attn_v")], DType::Q6_K);
  EXPECT_EQ(recipe(l70, "Q3_K_S")[blk(40, "attn_v")], DType::Q5_K);
}

// Rows that k-quant blocks do not divide fall back as llama.cpp does (the tiny fixture is 64 wide).
TEST(Quantize, IncompatibleRowsFallBack) {
  const ExportModel tiny = shape_only(2, 64, 192, 4, 2, 128256, true);
  auto q4km = recipe(tiny, "Q4_K_M");
  EXPECT_EQ(q4km["token_embd.weight"], DType::Q8_0);  // the classifier: Q8_0 when rows are not 256-aligned
  EXPECT_EQ(q4km[blk(0, "attn_q")], DType::Q5_0);     // Q4_K -> Q5_0
  EXPECT_EQ(q4km[blk(0, "attn_v")], DType::Q5_0);     // use_more_bits(0, 2) is false
  EXPECT_EQ(q4km[blk(1, "attn_v")], DType::Q8_0);     // Q6_K -> Q8_0
  EXPECT_EQ(q4km[blk(1, "ffn_down")], DType::Q8_0);
  EXPECT_EQ(recipe(tiny, "Q2_K")[blk(0, "attn_q")], DType::IQ4_NL);
  EXPECT_EQ(recipe(tiny, "IQ4_XS")[blk(0, "attn_q")], DType::IQ4_NL);
  EXPECT_EQ(recipe(tiny, "Q5_K_S")[blk(0, "attn_q")], DType::Q5_1);
  EXPECT_EQ(recipe(tiny, "Q6_K")[blk(0, "attn_q")], DType::Q8_0);
  const ExportModel odd = shape_only(1, 64, 80, 4, 4, 100, true);  // ffn_down rows of 80
  EXPECT_EQ(recipe(odd, "Q4_K_M")[blk(0, "ffn_down")], DType::F16);   // Q6_K -> Q8_0 does not fit either: F16
  EXPECT_EQ(recipe(odd, "Q4_K_M")[blk(0, "ffn_gate")], DType::Q5_0);
  EXPECT_THROW(recipe(odd, "Q4_0"), Error);  // llama.cpp has no fallback for Q4_0 either
}

// Every type end to end on a model the k-quants fit: quantize, load, run; logits close to the
// float model's (bounds: a few times what each type gives here, ordered by bits).
TEST(Quantize, EveryTypeLoadsAndStaysCloseToTheFloatModel) {
  TempDir tmp;
  const std::string dir = tmp / "m";
  write_random_model(dir, kquant_spec());
  const std::vector<int> ids = {1, 17, 200, 33, 90, 5, 250, 128, 64, 3};
  const std::vector<float> ref = logits_of(dir, ids);
  double ref_rms = 0;
  for (float x : ref) ref_rms += double(x) * x;
  ref_rms = std::sqrt(ref_rms / double(ref.size()));
  // Measured on this model (seeded): Q8_0 0.012, Q6_K 0.041, Q5_* 0.08-0.095, 4-bit 0.15-0.19,
  // Q3_K_* 0.29-0.38, Q2_K 0.55 (uniform random weights are the hardest case for a quantizer).
  const std::map<std::string, double> bound = {
      {"Q4_0", 0.28}, {"Q4_1", 0.28}, {"Q5_0", 0.15}, {"Q5_1", 0.15}, {"Q8_0", 0.02}, {"Q2_K", 0.8},
      {"Q3_K_S", 0.55}, {"Q3_K_M", 0.55}, {"Q3_K_L", 0.55}, {"Q4_K_S", 0.28}, {"Q4_K_M", 0.28}, {"Q5_K_S", 0.15},
      {"Q5_K_M", 0.15}, {"Q6_K", 0.065}, {"IQ4_NL", 0.28}, {"IQ4_XS", 0.28}};
  std::map<std::string, double> errors;
  for (auto& [name, max_rel] : bound) {
    SCOPED_TRACE(name);
    const QuantType& q = quant_type_from_name(name);
    ExportModel m = export_hf_model(dir, DType::Count, {});
    prepare_for_quantize(m, q);
    const std::vector<DType> types = quantize_recipe(m, q);
    for (size_t i = 0; i < types.size(); ++i)
      EXPECT_EQ(is_quantized(types[i]), m.tensors[i].ne.size() > 1) << m.tensors[i].name;
    const std::string out = tmp / (name + ".gguf");
    write_gguf(m, types, out);
    auto f = gguf::File::open(out);
    EXPECT_EQ(f->get_int("general.file_type", 0, 100), int64_t(q.ftype));
    EXPECT_EQ(f->tensor("blk.0.ffn_up.weight")->dtype, q.default_type);
    const std::vector<float> got = logits_of(out, ids);
    ASSERT_EQ(got.size(), ref.size());
    double err = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(std::isfinite(got[i]));
      err += double(got[i] - ref[i]) * (got[i] - ref[i]);
    }
    const double rel = std::sqrt(err / double(got.size())) / ref_rms;
    EXPECT_LT(rel, max_rel);
    errors[name] = rel;
  }
  // More bits, less error.
  const char* ladder[] = {"Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K"};
  for (size_t i = 1; i < std::size(ladder); ++i) EXPECT_LT(errors[ladder[i - 1]], errors[ladder[i]]) << ladder[i];
}

// A directory quantizes to the same bytes as its converted GGUF file does (what llama.cpp users
// do in two steps), whatever the thread count.
TEST(Quantize, DirectoryInputEqualsConvertThenQuantize) {
  TempDir tmp;
  const std::string dir = tmp / "m";
  write_random_model(dir, kquant_spec());
  ASSERT_EQ(run_camelid("convert " + q(dir) + " " + q(tmp / "f32.gguf")).status, 0);
  ASSERT_EQ(run_camelid("quantize " + q(dir) + " " + q(tmp / "a.gguf") + " Q4_K_M --threads 1").status, 0);
  ASSERT_EQ(run_camelid("quantize " + q(tmp / "f32.gguf") + " " + q(tmp / "b.gguf") + " q4_k_m --threads 2").status, 0);
  EXPECT_TRUE(read_file(tmp / "a.gguf") == read_file(tmp / "b.gguf"));
}

// Quantized input is dequantized and requantized (llama-quantize --allow-requantize).
TEST(Quantize, RequantizesQuantizedInput) {
  TempDir tmp;
  const std::string out = tmp / "q.gguf";
  const CmdResult r = run_camelid("quantize " + q(fixture("gguf/qmix-mixed.gguf")) + " " + q(out) + " Q5_K_M", true);
  ASSERT_EQ(r.status, 0) << r.out;
  auto f = gguf::File::open(out);
  EXPECT_EQ(f->get_int("general.file_type", 0, 100), 17);
  EXPECT_EQ(f->tensor("blk.4.ffn_up.weight")->dtype, DType::Q5_K);  // was Q8_0
  EXPECT_EQ(f->tensor("blk.0.ffn_down.weight")->dtype, DType::Q6_K);
  EXPECT_NO_THROW(load_model(out));
}

TEST(Quantize, ErrorsAreOneLineAndStatusOne) {
  TempDir tmp;
  const std::string in = fixture("gguf/tiny-llama3-bf16.gguf");
  spit(tmp / "notes.txt", "hello\n");
  const std::pair<std::string, std::string> cases[] = {
      {"quantize " + q(in) + " " + q(tmp / "a.gguf") + " Q4_K_X", "Q4_K_M"},  // lists the types
      {"quantize " + q(in) + " " + q(tmp / "a.gguf") + " F16", "unknown quantization type 'F16'"},
      {"quantize " + q(tmp / "notes.txt") + " " + q(tmp / "b.gguf") + " Q8_0", "not a model"},
      {"quantize " + q(tmp / "missing") + " " + q(tmp / "c.gguf") + " Q8_0", "no such file"},
      {"quantize " + q(in) + " " + q(tmp / "no-such-dir/d.gguf") + " Q8_0", "no-such-dir/d.gguf"},
      {"quantize " + q(tmp.str()) + " " + q(tmp / "e.gguf") + " Q8_0", "config.json"},
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
