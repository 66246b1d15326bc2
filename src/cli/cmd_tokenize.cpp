// `camelid tokenize` / `camelid detokenize`: the tokenizer alone, for scripts and checks.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/mmap_file.h"
#include "tokenizer/tokenizer.h"

namespace camelid::cli {
namespace {

struct TokArgs {
  std::string model, text, batch, ids;
  bool no_bos = false, parse_special = false, json = false, skip_special = false, have_text = false;
};

void run_tokenize(const TokArgs& a) {
  auto tok = Tokenizer::load(a.model);
  if (!a.batch.empty()) {
    nlohmann::json in;
    try {
      in = nlohmann::json::parse(read_text_file(a.batch));
    } catch (const nlohmann::json::exception& e) {
      fail(a.batch, ": invalid JSON: ", e.what());
    }
    if (!in.is_array()) fail(a.batch, ": expected a JSON array of strings");
    nlohmann::json out = nlohmann::json::array();
    for (size_t i = 0; i < in.size(); ++i) {
      if (!in[i].is_string()) fail(a.batch, ": element ", i, " is not a string");
      out.push_back(tok->encode(in[i].get<std::string>(), !a.no_bos, a.parse_special));
    }
    std::printf("%s\n", out.dump().c_str());
    return;
  }
  const std::string text = a.have_text ? a.text : std::string(std::istreambuf_iterator<char>(std::cin), {});
  const auto ids = tok->encode(text, !a.no_bos, a.parse_special);
  if (a.json) {
    std::printf("%s\n", nlohmann::json{{"ids", ids}}.dump().c_str());
  } else {
    for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? "," : "", ids[i]);
    std::printf("\n");
  }
}

const bool reg_tokenize = add_command([](CLI::App& app) {
  auto a = std::make_shared<TokArgs>();
  auto* sub = app.add_subcommand("tokenize", "Text (stdin, or --text) to token ids");
  sub->add_option("-m,--model", a->model, "model directory, GGUF file, tokenizer.json or tokenizer.model")->required();
  auto* text = sub->add_option("--text", a->text, "text to tokenize (default: all of stdin, byte for byte)");
  auto* batch = sub->add_option("--batch", a->batch, "JSON file with an array of strings: prints an array of id arrays");
  text->excludes(batch);
  sub->add_flag("--no-bos", a->no_bos, "do not add the tokenizer's BOS/EOS");
  sub->add_flag("--parse-special", a->parse_special, "turn special-token text such as <|eot_id|> into those tokens");
  sub->add_flag("--json", a->json, "print {\"ids\":[...]}");
  sub->callback([a, text] {
    a->have_text = text->count() > 0;
    run_tokenize(*a);
  });
});

const bool reg_detokenize = add_command([](CLI::App& app) {
  auto a = std::make_shared<TokArgs>();
  auto* sub = app.add_subcommand("detokenize", "Token ids to text");
  sub->add_option("-m,--model", a->model, "model directory, GGUF file, tokenizer.json or tokenizer.model")->required();
  sub->add_option("--ids", a->ids, "token ids, comma-separated")->required();
  sub->add_flag("--skip-special", a->skip_special, "leave out special tokens such as <s>");
  sub->add_flag("--json", a->json, "print {\"text\":...}");
  sub->callback([a] {
    auto tok = Tokenizer::load(a->model);
    const std::string text = tok->decode(parse_ids(a->ids), a->skip_special);
    if (a->json) std::printf("%s\n", nlohmann::json{{"text", text}}.dump().c_str());
    else std::printf("%s\n", text.c_str());
  });
});

}  // namespace
}  // namespace camelid::cli
