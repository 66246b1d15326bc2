#include "server/infill_api.h"

#include "core/json.h"

namespace camelid::api {

namespace {

std::string text_field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (!it->is_string()) bad_request(key, std::string("'") + key + "' must be a string");
  return *it;
}

}  // namespace

InfillRequest parse_infill_request(const std::string& body, uint64_t default_seed, int vocab_size) {
  json j;
  try {
    j = parse_ordered_json(body, "request body", {64, true});
  } catch (const Error& e) {
    bad_request("", e.what());
  }
  if (!j.is_object()) bad_request("", "the body must be a JSON object");
  InfillRequest r;
  r.prefix = text_field(j, "input_prefix") + text_field(j, "prompt");
  r.suffix = text_field(j, "input_suffix");
  if (auto x = j.find("input_extra"); x != j.end() && !x->is_null()) {
    if (!x->is_array() || x->size() > 256) bad_request("input_extra", "'input_extra' must be an array of up to 256 {\"filename\", \"text\"} objects");
    for (size_t i = 0; i < x->size(); ++i) {
      const json& f = (*x)[i];
      const std::string w = "input_extra[" + std::to_string(i) + "]";
      if (!f.is_object()) bad_request(w, "'" + w + "' must be an object with 'text' and optionally 'filename'");
      auto t = f.find("text"), n = f.find("filename");
      if (t == f.end() || !t->is_string()) bad_request(w + ".text", "'" + w + ".text' must be a string");
      if (n != f.end() && !n->is_null() && !n->is_string()) bad_request(w + ".filename", "'" + w + ".filename' must be a string");
      r.extra.push_back({n == f.end() || n->is_null() ? "tmp" : n->get<std::string>(), *t});
    }
  }
  int n_predict = -1;
  if (auto n = j.find("n_predict"); n != j.end() && !n->is_null()) {
    if (!n->is_number_integer() || n->get<long long>() < -1 || n->get<long long>() > 1 << 30)
      bad_request("n_predict", "'n_predict' must be an integer from -1 (no limit) up");
    n_predict = n->get<int>();
  }
  // The rest as /v1/completions reads it (same checks, same names), minus what this shape
  // cannot report.
  json c = j;
  for (const char* k : {"input_prefix", "input_suffix", "input_extra", "n_predict", "n", "logprobs", "stream_options"}) c.erase(k);
  c["prompt"] = "";
  if (c.contains("repeat_penalty") && !c.contains("repetition_penalty")) c["repetition_penalty"] = c["repeat_penalty"];
  r.completion = parse_completion_request(dump_json(c), false, default_seed, vocab_size);
  if (!j.contains("max_tokens") || j["max_tokens"].is_null()) r.completion.max_tokens = n_predict;
  r.completion.llama_format = true;
  return r;
}

json infill_chunk(const std::string& content, int tokens_predicted, int tokens_evaluated) {
  return {{"index", 0}, {"content", content}, {"stop", false}, {"id_slot", 0},
          {"tokens_predicted", tokens_predicted}, {"tokens_evaluated", tokens_evaluated}};
}

json infill_final(const InfillEnd& e) {
  const std::string type = e.stopped_by_word ? "word" : e.finish_reason == "stop" ? "eos" : "limit";
  const double per_tok = e.tokens_predicted > 0 ? e.predicted_ms / e.tokens_predicted : 0;
  return {{"index", 0},
          {"content", e.content},
          {"id_slot", 0},
          {"stop", true},
          {"model", e.model},
          {"tokens_predicted", e.tokens_predicted},
          {"tokens_evaluated", e.tokens_evaluated},
          {"truncated", false},
          {"stop_type", type},
          {"stopped_eos", type == "eos"},
          {"stopped_word", type == "word"},
          {"stopped_limit", type == "limit"},
          {"timings",
           {{"prompt_n", e.tokens_evaluated},
            {"prompt_ms", e.prompt_ms},
            {"predicted_n", e.tokens_predicted},
            {"predicted_ms", e.predicted_ms},
            {"predicted_per_token_ms", per_tok},
            {"predicted_per_second", per_tok > 0 ? 1000.0 / per_tok : 0.0}}}};
}

}  // namespace camelid::api
