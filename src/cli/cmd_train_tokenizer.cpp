// `camelid train-tokenizer`: a BPE tokenizer learnt from text files, written as Hugging Face
// tokenizer.json + tokenizer_config.json (SentencePiece-style with byte fallback like Llama 2,
// or byte-level like Llama 3).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/tokenizer_json_writer.h"

namespace camelid::cli {
namespace {

struct TrainTokArgs {
  std::string out, type = "sentencepiece-bpe";
  std::vector<std::string> files;
  int64_t vocab_size = 0, min_frequency = 2, max_length = 4096;
  uint64_t max_bytes = 0;
  bool json = false, progress = false;
};

// One line on stderr redrawn at most ~10 times a second: bytes read, then vocabulary built.
class TrainProgressLine {
 public:
  explicit TrainProgressLine(bool enabled) : enabled_(enabled || ::isatty(2)), start_(std::chrono::steady_clock::now()) {}
  ~TrainProgressLine() { finish(); }
  TrainProgressFn callback() {
    if (!enabled_) return {};
    return [this](const TrainProgress& p) { update(p); };
  }
  void finish() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  void update(const TrainProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && p.done < p.total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const int width = 24, filled = p.total ? int(width * double(std::min(p.done, p.total)) / double(p.total)) : width;
    std::string bar(size_t(filled), '#');
    bar.resize(size_t(width), '.');
    if (std::string_view(p.phase) == "reading")
      std::fprintf(stderr, "\r[%s] reading %.1f/%.1f MB %.1f s\x1b[K", bar.c_str(), p.done / 1e6, p.total / 1e6, secs);
    else
      std::fprintf(stderr, "\r[%s] vocabulary %llu/%llu %.1f s\x1b[K", bar.c_str(), (unsigned long long)p.done,
                   (unsigned long long)p.total, secs);
    std::fflush(stderr);
    drawn_ = true;
  }
  bool enabled_, drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

void run(const TrainTokArgs& a) {
  TokenizerTrainOptions o;
  if (a.type == "sentencepiece-bpe") o.type = TokenizerTrainType::SentencePieceBpe;
  else if (a.type == "bpe-bytelevel") o.type = TokenizerTrainType::ByteLevelBpe;
  else fail("--type: '", a.type, "' is not a tokenizer type (expected sentencepiece-bpe or bpe-bytelevel)");
  o.vocab_size = a.vocab_size;
  o.min_frequency = a.min_frequency;
  o.max_bytes = a.max_bytes;
  if (a.max_length < 1) fail("--model-max-length: must be at least 1, got ", a.max_length);
  const auto t0 = std::chrono::steady_clock::now();
  TrainedTokenizer t;
  {
    TrainProgressLine line(a.progress);
    t = train_tokenizer(a.files, o, line.callback());
  }
  const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_tokenizer_files(t, a.out, TokenizerFileOptions{a.max_length});
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double mb = t.bytes / 1e6;
  if (a.json) {
    nlohmann::json j{{"output", a.out},
                     {"type", a.type},
                     {"vocab_size", t.vocab.size()},
                     {"requested_vocab_size", a.vocab_size},
                     {"merges", t.merges.size()},
                     {"input_bytes", t.bytes},
                     {"words", t.words},
                     {"distinct_words", t.distinct_words},
                     {"seconds", secs},
                     {"train_seconds", train_s},
                     {"mb_per_second", secs > 0 ? mb / secs : 0.0}};
    if (o.type == TokenizerTrainType::SentencePieceBpe) {
      j["characters"] = t.characters;
      j["characters_kept"] = t.characters_kept;
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("wrote %s/tokenizer.json and tokenizer_config.json: %zu tokens (%zu merges) from %.2f MB of text in %.2f s (%.2f MB/s)\n",
                a.out.c_str(), t.vocab.size(), t.merges.size(), mb, secs, secs > 0 ? mb / secs : 0.0);
  }
  if (int64_t(t.vocab.size()) < a.vocab_size)
    std::fprintf(stderr, "warning: the text has no more pairs to merge: vocabulary of %zu tokens, not %lld\n", t.vocab.size(),
                 (long long)a.vocab_size);
}

const bool reg_train_tokenizer = add_command([](CLI::App& app) {
  auto a = std::make_shared<TrainTokArgs>();
  auto* sub = app.add_subcommand("train-tokenizer", "Train a BPE tokenizer on text files (writes tokenizer.json + tokenizer_config.json)");
  sub->add_option("files", a->files, "text files (UTF-8; invalid bytes count as U+FFFD)")->required();
  sub->add_option("-o,--output", a->out, "output directory (created if missing)")->required();
  sub->add_option("--vocab-size", a->vocab_size, "tokens in all, special and byte tokens included")->required();
  sub->add_option("--type", a->type, "sentencepiece-bpe (Llama 2 style, byte fallback) or bpe-bytelevel (Llama 3 style)");
  sub->add_option("--min-frequency", a->min_frequency,
                  "sentencepiece-bpe: characters seen fewer times get no token of their own (byte fallback)");
  sub->add_option("--max-bytes", a->max_bytes, "read at most this many bytes of input (0: all)");
  sub->add_option("--model-max-length", a->max_length, "model_max_length in tokenizer_config.json");
  sub->add_flag("--json", a->json, "print a JSON summary");
  sub->add_flag("--progress", a->progress, "progress bar on stderr even when it is not a terminal");
  sub->callback([a] { run(*a); });
});

}  // namespace
}  // namespace camelid::cli
