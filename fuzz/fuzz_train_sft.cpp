// SFT JSONL from strangers (train/sft_data.h): any bytes, as chat / Alpaca / pre-tokenized lines,
// rendered with the tiny Llama 2 fixture's tokenizer and chat template (loaded once). Every
// example must come out with ids < vocab, labels that are -1 or their own id (chat) or in the
// vocabulary, and at least one labelled token; rows built from them must stay in bounds; all
// else is a camelid::Error.
#include <cstdint>
#include <memory>
#include <string>

#include "chat/chat_template.h"
#include "core/error.h"
#include "fixtures.h"
#include "tokenizer/tokenizer.h"
#include "train/sft_data.h"

namespace {

struct Model {
  std::unique_ptr<camelid::Tokenizer> tok;
  std::unique_ptr<camelid::ChatTemplate> tmpl;
};

const Model& model() {
  static const Model m = [] {
    const std::string dir = camelid::test::fixture("models/tiny-llama2");
    Model m;
    m.tok = camelid::Tokenizer::load(dir);
    m.tmpl = std::make_unique<camelid::ChatTemplate>(camelid::ChatTemplate::from_model_dir(dir));
    return m;
  }();
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace camelid::train;
  const Model& m = model();
  SftRenderer r;
  r.tok = m.tok.get(), r.tmpl = m.tmpl.get(), r.now = 0, r.vocab = m.tok->vocab_size();
  try {
    auto ex = sft_examples_from_text(std::string(reinterpret_cast<const char*>(data), size), "fuzz.jsonl", r);
    for (const SftExample& e : ex) {
      if (e.ids.size() != e.labels.size() || e.ids.empty()) __builtin_trap();
      bool any = false;
      for (size_t i = 0; i < e.ids.size(); ++i) {
        if (e.ids[i] < 0 || e.ids[i] >= r.vocab || e.labels[i] >= r.vocab || e.labels[i] < -1) __builtin_trap();
        any |= e.labels[i] >= 0;
      }
      if (!any) __builtin_trap();
    }
    if (ex.empty()) return 0;
    SftRows rows(std::move(ex), 1 + int(size % 13), 0);
    std::vector<int> t(size_t(rows.seq_len())), y(t.size());
    for (int64_t i = 0; i < rows.count(); ++i) {
      rows.fill(i, t.data(), y.data());
      int64_t n = 0;
      for (int v : y) n += v >= 0;
      if (n != rows.targets(i) || n == 0) __builtin_trap();
    }
  } catch (const camelid::Error&) {
  }
  return 0;
}
