#include "server/server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <strings.h>
#include <semaphore>
#include <set>
#include <thread>

#include "chat/chat_prompt.h"
#include "chat/infill_prompt.h"
#include "chat/jinja.h"
#include "core/json.h"
#include "server/choice_stream.h"
#include "server/http_guard.h"
#include "server/infill_api.h"
#include "server/metrics.h"
#include "server/openai_api.h"
#include "server/structured_output.h"
#include "server/tool_choice.h"
#include "server/web_page.h"

namespace camelid {

using api::json;

namespace {

// What the engine thread reports for one request's choices, in order: tokens (with their
// logprobs when asked) and, last for each choice, its end.
struct TokenEvent {
  int choice;
  int token;  // -1: the choice ended (finish holds the reason)
  std::optional<TokenLogprob> lp;
  std::string finish;
  int completion_tokens = 0;
};

struct TokenChannel {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<TokenEvent> events;
  int open = 0;  // choices that have not ended
  std::vector<std::optional<TokenLogprob>> pending_lp;  // per choice, until its token comes
  std::chrono::steady_clock::time_point first_token{};
  bool got_token = false;
  std::chrono::steady_clock::time_point last_check = std::chrono::steady_clock::now();

  void push(TokenEvent e) {
    {
      std::lock_guard<std::mutex> lk(mu);
      if (e.token >= 0 && !got_token) got_token = true, first_token = std::chrono::steady_clock::now();
      if (e.token < 0) --open;
      events.push_back(std::move(e));
    }
    cv.notify_all();
  }

  // Waits for the next event (true) or the end of every choice (false), calling `waiting` every
  // 100 ms meanwhile (to notice a client that has gone, or a server stop).
  template <class F>
  bool next(TokenEvent& e, F&& waiting) {
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last_check >= std::chrono::milliseconds(100)) {  // however fast tokens come
        last_check = now;
        lk.unlock();
        waiting();
        lk.lock();
      }
      if (cv.wait_until(lk, last_check + std::chrono::milliseconds(100), [&] { return !events.empty() || open == 0; })) break;
    }
    if (events.empty()) return false;
    e = std::move(events.front());
    events.pop_front();
    return true;
  }
};

// The routes, so that a known path with the wrong method gets 405 (with Allow), not 404.
struct Route {
  const char* path;
  const char* method;
};
constexpr Route kRoutes[] = {{"/", "GET"},
                             {"/health", "GET"},
                             {"/v1/models", "GET"},
                             {"/v1/completions", "POST"},
                             {"/v1/chat/completions", "POST"},
                             {"/infill", "POST"},
                             {"/tokenize", "POST"},
                             {"/detokenize", "POST"},
                             {"/metrics", "GET"}};

// Bytes of a request (path, method) shown in a message: printable ASCII only, bounded.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? char(c) : '?';
  return s.size() > 200 ? out + "..." : out;
}

// Compares in time independent of where the strings differ (no API-key guessing by timing).
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() != b.size();
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % (b.size() + 1)];
  return diff == 0;
}

long unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

struct Server::Impl {
  Llama& model;
  const Tokenizer& tok;
  const ChatTemplate& tmpl;
  ServerOptions opt;
  const std::vector<int> stop_ids;  // end of a turn, for chat and plain completions alike
  Engine engine;
  GuardedHttpServer http;
  std::atomic<uint64_t> counter{0};
  std::mt19937_64 seeds{std::random_device{}()};
  std::mutex seed_mu;
  // Requests between submit and response, so that stop() can cancel them all.
  std::mutex inflight_mu;
  std::set<std::shared_ptr<EngineRequest>> inflight;
  bool stopping = false;  // under inflight_mu
  std::atomic<size_t> bodies_in_flight{0};
  ServerMetrics metrics;
  std::vector<std::pair<int, std::string>> tool_markers;  // special tokens that mark tool calls
  FimTokens fim;  // for /infill
  std::counting_semaphore<> preparing{std::max(2, int(std::thread::hardware_concurrency()))};
  std::once_flag vocab_once;  // the token trie for structured output, built at its first use
  std::shared_ptr<const TokenVocab> vocab;
  std::once_flag tool_vocab_once;  // the same with the tool-call marker tokens allowed
  std::shared_ptr<const TokenVocab> tool_vocab;

  using HandlerResponse = httplib::Server::HandlerResponse;

  Impl(Llama& m, const Tokenizer& t, const ChatTemplate& ct, ServerOptions o)
      : model(m), tok(t), tmpl(ct), opt(std::move(o)), stop_ids(end_of_turn_ids(t, m.config().eos_ids)),
        engine(m, opt.parallel, opt.ctx, 256, true, true, opt.kv_budget_tokens, opt.prefill_chunk), http(opt.limits) {
    tool_markers = tool_marker_tokens(tok);
    fim = find_fim_tokens(tok);
    if (opt.speculative) engine.enable_speculative(*opt.speculative);
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      try {
        return pre_route(req, res);
      } catch (...) {
        send_error(res, api::ApiError(500, "internal error while routing", "server_error"));
        return HandlerResponse::Handled;
      }
    });
    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      const std::string_view page = chat_page_html();
      res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
      res.set_header("Cache-Control", "no-cache");
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_header("Content-Security-Policy",
                     "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:");
    });
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      const EngineStats st = engine.stats();
      json j = {{"status", "ok"}, {"requests_active", st.active}, {"requests_queued", st.queued},
                {"connections", http.connections()}, {"slots", engine.n_slots()}, {"ctx", engine.ctx()}};
      if (opt.speculative) {
        const SpeculativeStats sp = engine.speculative_stats();
        j["speculative"] = {{"steps", sp.steps}, {"drafted", sp.drafted}, {"accepted", sp.accepted}};
      }
      res.set_content(dump_json(j), "application/json");
      metrics.request("/health", 200);
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics.render(engine.stats(), engine.n_slots()), "text/plain; version=0.0.4; charset=utf-8");
      metrics.request("/metrics", 200);
    });
    http.Post("/tokenize", [this](const httplib::Request& q, httplib::Response& r, const httplib::ContentReader& c) {
      handle_json(q, r, c, "/tokenize", [this](const json& j) { return tokenize(j); });
    });
    http.Post("/detokenize", [this](const httplib::Request& q, httplib::Response& r, const httplib::ContentReader& c) {
      handle_json(q, r, c, "/detokenize", [this](const json& j) { return detokenize(j); });
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      json j = {{"object", "list"},
                {"data", json::array({{{"id", opt.model_name}, {"object", "model"}, {"created", unix_now()},
                                       {"owned_by", "camelid"}}})}};
      res.set_content(dump_json(j), "application/json");
      metrics.request("/v1/models", 200);
    });
    http.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& r, const httplib::ContentReader& c) {
      handle(q, r, c, false);
    });
    http.Post("/infill", [this](const httplib::Request& q, httplib::Response& r, const httplib::ContentReader& c) {
      handle_infill(q, r, c);
    });
    http.Post("/v1/chat/completions",
              [this](const httplib::Request& q, httplib::Response& r, const httplib::ContentReader& c) { handle(q, r, c, true); });
    // Statuses httplib sets itself (a malformed request line, ...): an OpenAI-style body.
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      const int st = res.status;
      try {
        send_error(res, api::ApiError(st, st == 404 ? "no route for " + printable(req.method) + " " + printable(req.path)
                                                    : "HTTP error " + std::to_string(st),
                                      st == 404 ? "not_found_error" : "invalid_request_error"));
      } catch (...) {
      }
      res.status = st;
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        send_error(res, api::ApiError(500, e.what(), "server_error"));
      } catch (...) {
        send_error(res, api::ApiError(500, "unknown error", "server_error"));
      }
    });
  }

  // Everything that can be decided from the request head, before any body byte is read.
  HandlerResponse pre_route(const httplib::Request& req, httplib::Response& res) {
    // httplib would gzip an event stream without flushing it (a stream would reach a client that
    // accepts gzip only at its end), so responses are never compressed. The Request is httplib's
    // own non-const object.
    const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
    auto reject = [&](const api::ApiError& e) {
      send_error(res, e);
      bool known = false;
      for (const Route& r : kRoutes) known |= req.path == r.path;
      metrics.request(known ? req.path : "other", e.status);
      GuardedHttpServer::close_after_response();  // its body, if any, stays unread
      res.set_header("Connection", "close");
      return HandlerResponse::Handled;
    };
    if (GuardedHttpServer::over_limit() && req.path != "/health") {
      res.set_header("Retry-After", "1");
      return reject(api::ApiError(503, "the server is at its connection limit; retry shortly", "server_error"));
    }
    const Route* route = nullptr;
    for (const Route& r : kRoutes)
      if (req.path == r.path) route = &r;
    if (!route)
      return reject(api::ApiError(404, "no route for " + printable(req.method) + " " + printable(req.path), "not_found_error"));
    const bool is_get = std::string(route->method) == "GET";
    if (req.method != route->method && !(is_get && req.method == "HEAD")) {
      res.set_header("Allow", is_get ? "GET, HEAD" : route->method);
      return reject(api::ApiError(405, "method " + printable(req.method) + " is not allowed on " + route->path +
                                           " (use " + route->method + ")"));
    }
    if (!opt.api_key.empty() && req.path != "/health" && req.path != "/" &&
        !same_secret(req.get_header_value("Authorization"), "Bearer " + opt.api_key))
      return reject(api::ApiError(401, "Incorrect or missing API key", "invalid_request_error", "", "invalid_api_key"));
    if (!is_get) {
      std::string enc = req.get_header_value("Content-Encoding");
      for (auto& c : enc) c = char(std::tolower(static_cast<unsigned char>(c)));
      if (!enc.empty() && enc != "identity" && enc != "gzip" && enc != "deflate" && enc != "br")
        return reject(api::ApiError(415, "unsupported Content-Encoding '" + printable(enc) + "' (use gzip, deflate or br)"));
      // Exactly one framing, and a declared length within the limit: answered before the body.
      const bool has_length = req.has_header("Content-Length"), has_te = req.has_header("Transfer-Encoding");
      if (has_te && (has_length || strcasecmp(req.get_header_value("Transfer-Encoding").c_str(), "chunked") != 0))
        return reject(api::ApiError(400, "Transfer-Encoding must be 'chunked', without Content-Length"));
      if (!has_length && !has_te)
        return reject(api::ApiError(411, "a request body needs Content-Length or chunked Transfer-Encoding"));
      if (has_length) {
        const std::string len = req.get_header_value("Content-Length");
        if (len.empty() || len.size() > 18 || len.find_first_not_of("0123456789") != std::string::npos ||
            req.get_header_value_count("Content-Length") != 1)
          return reject(api::ApiError(400, "invalid Content-Length '" + printable(len) + "'"));
        // The same slack as for compressed or chunk-framed bodies, whose decoded size decides.
        if (std::stoull(len) > http.limits().max_body_bytes + (64u << 10))
          return reject(api::ApiError(413, "the request body is larger than " + std::to_string(http.limits().max_body_bytes) +
                                               " bytes"));
      }
    }
    return HandlerResponse::Unhandled;
  }

  // A request body in memory, counted against the server-wide budget until it is dropped.
  struct Body {
    std::atomic<size_t>& in_flight;
    std::string text;
    ~Body() { in_flight -= text.size(); }
  };

  // Reads the body with Content-Encoding undone: at most limits.max_body_bytes of it, and only while
  // all bodies in memory stay within limits.max_bodies_in_flight (else 503).
  void read_body(httplib::Response& res, const httplib::ContentReader& read, Body& body) {
    const size_t limit = http.limits().max_body_bytes, budget = http.limits().max_bodies_in_flight;
    bool too_big = false, over_budget = false;
    const bool ok = read([&](const char* d, size_t n) {
      if (n > limit - body.text.size()) return too_big = true, false;
      if (body.in_flight.fetch_add(n) + n > budget) {
        body.in_flight -= n;
        return over_budget = true, false;
      }
      body.text.append(d, n);
      return true;
    });
    if (ok) return;
    GuardedHttpServer::close_after_response();  // the rest of the body stays unread
    res.set_header("Connection", "close");
    const int why = GuardedHttpServer::body_failure_status();
    if (over_budget)
      throw api::ApiError(503, "the server holds too many request bodies right now; retry shortly", "server_error");
    if (too_big || why == 413 || res.status == 413)
      throw api::ApiError(413, "the request body is larger than " + std::to_string(limit) + " bytes (after decompression)");
    if (why == 408) throw api::ApiError(408, "the request body did not arrive in time");
    throw api::ApiError(400, "the request body could not be read (malformed chunked or compressed data?)");
  }

  static void send_error(httplib::Response& res, const api::ApiError& e) {
    res.status = e.status;
    res.set_content(dump_json(e.to_json()), "application/json");
  }

  uint64_t random_seed() {
    std::lock_guard<std::mutex> lk(seed_mu);
    return seeds();
  }

  std::vector<int> prompt_ids(const api::CompletionRequest& r) {
    if (!r.chat) {
      if (!r.prompt_ids.empty()) return r.prompt_ids;
      // The client owns the whole prompt here, so special-token text is honoured (as HF does).
      return tok.encode(r.prompt, true, true);
    }
    ChatTemplateInputs in;
    in.messages = r.messages;
    in.tools = r.tools;
    in.add_generation_prompt = true;
    try {
      return encode_chat(tok, tmpl, in);
    } catch (const jinja::RaisedError& e) {  // the template refuses this conversation
      throw api::ApiError(400, std::string("chat template: ") + e.what(), "invalid_request_error", "messages");
    } catch (const jinja::TemplateError& e) {  // the model's template failed (or hit a sandbox limit)
      throw api::ApiError(500, std::string("chat template: ") + e.what(), "server_error", "messages");
    } catch (const Error& e) {
      throw api::ApiError(400, std::string("chat template: ") + e.what(), "invalid_request_error", "messages");
    }
  }

  // Maps whatever a handler throws to an OpenAI-style error; returns the status sent.
  template <class F>
  int guarded(httplib::Response& res, F&& f) {
    try {
      f();
      return res.status > 0 ? res.status : 200;
    } catch (const api::ApiError& e) {
      send_error(res, e);
    } catch (const Error& e) {
      send_error(res, api::ApiError(400, e.what()));
    } catch (const std::bad_alloc&) {
      send_error(res, api::ApiError(503, "out of memory for this request", "server_error"));
    } catch (const std::exception& e) {
      send_error(res, api::ApiError(500, e.what(), "server_error"));
    } catch (...) {
      send_error(res, api::ApiError(500, "unknown error", "server_error"));
    }
    return res.status;
  }

  // Reads and parses a body under the same limits as completions (size, memory, preparing slots).
  template <class F>
  void with_body(httplib::Response& res, const httplib::ContentReader& read, F&& f) {
    Body body{bodies_in_flight, {}};
    read_body(res, read, body);
    // Parsing, the template and the tokenizer take up to ~40x the body in memory: only a few
    // requests at a time (as many as cores) do it.
    if (!preparing.try_acquire_for(std::chrono::seconds(30)))
      throw api::ApiError(503, "the server is busy preparing other requests; retry shortly", "server_error");
    struct Release {
      std::counting_semaphore<>& s;
      ~Release() { s.release(); }
    } release{preparing};
    f(body.text);
  }

  // /tokenize and /detokenize: JSON in, JSON out.
  template <class F>
  void handle_json(const httplib::Request&, httplib::Response& res, const httplib::ContentReader& read,
                   const char* endpoint, F&& f) {
    const int status = guarded(res, [&] {
      with_body(res, read, [&](const std::string& text) {
        json j;
        try {
          j = parse_ordered_json(text, "request body", {64, true});
        } catch (const Error& e) {
          throw api::ApiError(400, e.what());
        }
        if (!j.is_object()) throw api::ApiError(400, "the body must be a JSON object");
        res.set_content(dump_json(f(j)), "application/json");
      });
    });
    metrics.request(endpoint, status);
  }

  static bool flag(const json& j, const char* key, bool def) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return def;
    if (!it->is_boolean()) throw api::ApiError(400, std::string("'") + key + "' must be a boolean", "invalid_request_error", key);
    return *it;
  }

  // llama-server's shapes: {"content", "add_special"?, "parse_special"?, "with_pieces"?} -> {"tokens"}.
  json tokenize(const json& j) {
    auto c = j.find("content");
    if (c == j.end() || !c->is_string()) throw api::ApiError(400, "'content' must be a string", "invalid_request_error", "content");
    const bool add_special = flag(j, "add_special", false), parse_special = flag(j, "parse_special", true),
               pieces = flag(j, "with_pieces", false);
    const std::vector<int> ids = tok.encode(c->get<std::string>(), add_special, parse_special);
    json out = json::array();
    for (int id : ids)
      if (pieces) out.push_back({{"id", id}, {"piece", tok.decode({id}, false, true)}});
      else out.push_back(id);
    return {{"tokens", out}};
  }

  // {"tokens": [ids]} -> {"content"} (special tokens written out, as llama-server does).
  json detokenize(const json& j) {
    auto t = j.find("tokens");
    if (t == j.end() || !t->is_array()) throw api::ApiError(400, "'tokens' must be an array of token ids", "invalid_request_error", "tokens");
    std::vector<int> ids;
    for (auto& v : *t) {
      if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() >= tok.vocab_size())
        throw api::ApiError(400, "'tokens' must hold token ids below " + std::to_string(tok.vocab_size()),
                            "invalid_request_error", "tokens");
      ids.push_back(v.get<int>());
    }
    return {{"content", tok.decode(ids, false, false)}};
  }

  // One completion request, start to end: nothing may escape (the process must outlive any request).
  void handle(const httplib::Request&, httplib::Response& res, const httplib::ContentReader& read, bool chat) {
    handle_generation(res, read, chat ? "/v1/chat/completions" : "/v1/completions",
                      [&](const std::string& text, api::CompletionRequest& r, std::vector<int>& ids) {
                        r = api::parse_completion_request(text, chat, random_seed(), model.config().vocab_size);
                        enforce_tool_choice(r);
                        ids = prompt_ids(r);
                      });
  }

  // llama-server's POST /infill: the model's fill-in-the-middle prompt, llama-server's response shape.
  void handle_infill(const httplib::Request&, httplib::Response& res, const httplib::ContentReader& read) {
    handle_generation(res, read, "/infill", [&](const std::string& text, api::CompletionRequest& r, std::vector<int>& ids) {
      if (!fim.found())
        throw api::ApiError(400, "the model " + opt.model_name + " has no fill-in-the-middle tokens (Code Llama's "
                                 "\xE2\x96\x81<PRE>/<SUF>/<MID>, <|fim_prefix|>/<|fim_suffix|>/<|fim_middle|>, or GGUF "
                                 "tokenizer.ggml.prefix/suffix/middle_token_id): /infill needs a code model trained for infill");
      api::InfillRequest in = api::parse_infill_request(text, random_seed(), model.config().vocab_size);
      ids = infill_prompt(tok, in.prefix, in.suffix, opt.model_name, in.extra);
      r = std::move(in.completion);
    });
  }

  // prepare(body text, request, prompt ids) under the body limits; then the generation.
  template <class Prepare>
  void handle_generation(httplib::Response& res, const httplib::ContentReader& read, const char* endpoint, Prepare&& prepare) {
    const auto t0 = std::chrono::steady_clock::now();
    const int status = guarded(res, [&] {
      api::CompletionRequest r;
      std::vector<int> ids;
      with_body(res, read, [&](const std::string& text) { prepare(text, r, ids); });
      if (int(ids.size()) >= engine.ctx())
        throw api::ApiError(400, "This model's context is " + std::to_string(engine.ctx()) + " tokens, but the prompt has " +
                                     std::to_string(ids.size()) + " tokens", "invalid_request_error", r.chat ? "messages" : "prompt",
                            "context_length_exceeded");
      run(r, std::move(ids), res, endpoint, t0);
    });
    metrics.request(endpoint, status);
    if (status != 200) {
      std::string msg;
      try {
        msg = json::parse(res.body)["error"]["message"];
      } catch (...) {
      }
      std::fprintf(stderr, "camelid: %s %d error: %s\n", endpoint, status, msg.substr(0, 200).c_str());
    }
  }

  // tool_choice "required" or a named function: a grammar that admits only calls of the offered
  // functions, in the template's format.
  void enforce_tool_choice(api::CompletionRequest& r) {
    if (!r.chat || (r.tool_choice != api::ToolChoice::Required && r.tool_choice != api::ToolChoice::Named)) return;
    if (r.grammar)
      throw api::ApiError(400, "'tool_choice' \"required\" or a named function cannot be combined with 'response_format' or 'grammar'",
                          "invalid_request_error", "tool_choice");
    try {
      r.grammar = grammar_from_gbnf(tools::tool_choice_grammar(r.tools, tools::call_format(tmpl.source()), r.parallel_tool_calls));
    } catch (const Error& e) {
      throw api::ApiError(400, std::string("'tool_choice': ") + e.what(), "invalid_request_error", "tool_choice");
    }
    r.grammar_for_tools = true;
  }

  // Registers a request for stop(); cancels it at once if the server is already stopping.
  void track(const std::shared_ptr<EngineRequest>& er) {
    std::lock_guard<std::mutex> lk(inflight_mu);
    inflight.insert(er);
    if (stopping) er->cancelled = true;
  }
  void untrack(const std::shared_ptr<EngineRequest>& er) {
    std::lock_guard<std::mutex> lk(inflight_mu);
    inflight.erase(er);
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lk(inflight_mu);
      stopping = true;
      for (auto& er : inflight) er->cancelled = true;
    }
    http.stop();
  }

  // One request's generation: its choices' engine requests and text pipelines. It outlives the
  // handler while a stream is being written; its end logs the request and feeds the metrics.
  struct Generation {
    Impl* impl;
    api::CompletionRequest r;
    api::ResponseMeta meta;
    const char* endpoint;
    std::chrono::steady_clock::time_point t0;
    int prompt_tokens = 0;
    std::shared_ptr<TokenChannel> ch = std::make_shared<TokenChannel>();
    std::vector<std::shared_ptr<EngineRequest>> reqs;
    std::vector<std::unique_ptr<ChoiceStream>> choices;
    std::vector<int> completion_tokens;
    int tokens_seen = 0;  // all choices' tokens so far
    std::vector<std::string> engine_finish;
    std::string error;  // the first choice's "error: ..." finish, if any
    bool submitted = false;

    ~Generation() {
      for (auto& er : reqs) {
        er->cancelled = true;
        impl->untrack(er);
      }
      if (!submitted) return;  // the handler reports the error
      const auto end = std::chrono::steady_clock::now();
      int completion = 0;
      for (int c : completion_tokens) completion += c;
      double ttft = -1, tps = 0;
      {
        std::lock_guard<std::mutex> lk(ch->mu);
        if (ch->got_token) {
          ttft = std::chrono::duration<double>(ch->first_token - t0).count();
          const double gen_s = std::chrono::duration<double>(end - ch->first_token).count();
          if (gen_s > 0 && completion > 1) tps = (completion - 1) / gen_s;
        }
      }
      std::string finishes;
      for (auto& c : choices) finishes += (finishes.empty() ? "" : ",") + (c ? c->result().finish_reason : "");
      for (auto& f : engine_finish)
        if (f == "cancelled") finishes += "(cancelled)";
      impl->metrics.generation(prompt_tokens, completion, ttft, std::chrono::duration<double>(end - t0).count());
      std::fprintf(stderr, "camelid: %s %s %d prompt=%d completion=%d n=%d ttft=%.3fs %.1f tok/s finish=%s\n",
                   meta.id.c_str(), endpoint, error.empty() ? 200 : 500, prompt_tokens, completion, r.n, ttft, tps, finishes.c_str());
    }

    // Takes the next event; appends the chunks it yields. False once every choice has ended.
    bool step(std::vector<json>& chunks) {
      auto check = [this] {
        if (GuardedHttpServer::client_gone())
          for (auto& er : reqs) er->cancelled = true;
      };
      TokenEvent e;
      if (!ch->next(e, check)) return false;
      ChoiceStream& c = *choices[e.choice];
      std::vector<json> out;
      if (e.token >= 0) {
        ++tokens_seen;
        out = c.push(e.token, e.lp ? &*e.lp : nullptr);
        if (c.stopped()) reqs[e.choice]->cancelled = true;  // frees the slot at the engine's next step
      } else {
        completion_tokens[e.choice] = e.completion_tokens;
        engine_finish[e.choice] = e.finish;
        if (e.finish.rfind("error", 0) == 0 && error.empty()) error = e.finish;
        out = c.finish(e.finish);
      }
      for (auto& j : out) chunks.push_back(std::move(j));
      return true;
    }

    // llama-server's last event / whole response (POST /infill: one choice).
    json infill_end(bool stream) const {
      api::InfillEnd e;
      const api::ChoiceResult res = choices[0]->result();
      e.content = stream ? "" : res.text;
      e.finish_reason = res.finish_reason;
      e.stopped_by_word = choices[0]->stopped();
      e.tokens_predicted = completion_tokens[0];
      e.tokens_evaluated = prompt_tokens;
      e.model = meta.model;
      const auto end = std::chrono::steady_clock::now();
      std::lock_guard<std::mutex> lk(ch->mu);
      const auto first = ch->got_token ? ch->first_token : end;
      e.prompt_ms = std::chrono::duration<double, std::milli>(first - t0).count();
      e.predicted_ms = std::chrono::duration<double, std::milli>(end - first).count();
      return api::infill_final(e);
    }

    api::Usage usage() const {
      api::Usage u{prompt_tokens, 0};
      for (int c : completion_tokens) u.completion_tokens += c;
      return u;
    }
  };

  void run(const api::CompletionRequest& req, std::vector<int> ids, httplib::Response& res, const char* endpoint,
           std::chrono::steady_clock::time_point t0) {
    auto g = std::make_shared<Generation>();
    g->impl = this;
    g->r = req;
    g->endpoint = endpoint;
    g->t0 = t0;
    g->prompt_tokens = int(ids.size());
    g->meta = {(req.chat ? "chatcmpl-" : "cmpl-") + std::to_string(unix_now()) + "-" + std::to_string(++counter), unix_now(),
               opt.model_name};
    const api::CompletionRequest& r = g->r;
    const int room = engine.ctx() - int(ids.size());
    auto ch = g->ch;
    ch->open = r.n;
    ch->pending_lp.resize(r.n);
    g->completion_tokens.assign(r.n, 0);
    g->engine_finish.assign(r.n, "");
    for (int i = 0; i < r.n; ++i) {
      g->choices.push_back(std::make_unique<ChoiceStream>(tok, r, g->meta, i, tool_markers));
      auto er = std::make_shared<EngineRequest>();
      er->max_tokens = r.max_tokens < 0 ? room : std::min(r.max_tokens, room);
      er->prompt = ids;
      er->sampling = r.sampling;
      er->sampling.seed = r.sampling.seed + uint64_t(i);  // each choice its own stream
      er->stop_ids = stop_ids;
      if (r.llama_format && fim.eot >= 0) er->stop_ids.push_back(fim.eot);  // the end of an infilled middle
      if (r.grammar) {  // each choice its own matcher state
        std::call_once(vocab_once, [this] { vocab = grammar_vocab(tok); });
        if (r.grammar_for_tools)
          std::call_once(tool_vocab_once, [this] {
            std::vector<int> ids;
            for (auto& [id, text] : tool_markers) ids.push_back(id);
            tool_vocab = grammar_vocab(tok, ids);
          });
        er->constraint = std::make_shared<GrammarConstraint>(r.grammar, r.grammar_for_tools ? tool_vocab : vocab, stop_ids);
      }
      er->top_logprobs = r.logprobs;
      er->on_logprob = [ch, i](const TokenLogprob& lp) {
        std::lock_guard<std::mutex> lk(ch->mu);
        ch->pending_lp[i] = lp;
      };
      er->on_token = [ch, i](int id) {
        std::optional<TokenLogprob> lp;
        {
          std::lock_guard<std::mutex> lk(ch->mu);
          lp.swap(ch->pending_lp[i]);
        }
        ch->push({i, id, std::move(lp), "", 0});
        return true;
      };
      er->on_finish = [ch, i](const std::string& reason, int, int c) { ch->push({i, -1, std::nullopt, reason, c}); };
      g->reqs.push_back(er);
    }
    for (auto& er : g->reqs) {
      track(er);
      engine.submit(er);
    }
    g->submitted = true;

    if (!r.stream) {
      std::vector<json> ignored;
      while (g->step(ignored)) ignored.clear();
      if (!g->error.empty()) throw api::ApiError(500, g->error, "server_error");
      if (r.llama_format) return res.set_content(dump_json(g->infill_end(false)), "application/json");
      std::vector<api::ChoiceResult> results;
      for (auto& c : g->choices) results.push_back(c->result());
      res.set_content(dump_json(api::completion_response(r, g->meta, results, g->usage())), "application/json");
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    auto sent_roles = std::make_shared<bool>(false);
    auto finished = std::make_shared<bool>(false);
    res.set_chunked_content_provider(
        "text/event-stream",
        [g, sent_roles, finished](size_t, httplib::DataSink& sink) {
          auto send = [&](const json& j) {
            const std::string s = "data: " + dump_json(j) + "\n\n";
            return sink.write(s.data(), s.size());
          };
          auto gone = [&] {
            for (auto& er : g->reqs) er->cancelled = true;  // client went away: free the slots
            return false;
          };
          if (*finished) return false;
          const api::CompletionRequest& r = g->r;
          if (r.chat && !*sent_roles) {
            *sent_roles = true;
            for (int i = 0; i < r.n; ++i)
              if (!send(api::role_chunk(r, g->meta, i))) return gone();
            return true;
          }
          std::vector<json> chunks;
          const bool more = g->step(chunks);
          for (auto& c : chunks) {
            if (r.llama_format) {  // llama-server's events carry the text only
              const std::string text = c["choices"][0].value("text", "");
              if (text.empty()) continue;
              c = api::infill_chunk(text, g->tokens_seen, g->prompt_tokens);
            }
            if (!send(c)) return gone();
          }
          if (more) return true;
          *finished = true;
          if (r.llama_format) {  // no [DONE]: the last event says "stop": true
            send(g->infill_end(true));
            sink.done();
            return true;
          }
          if (r.include_usage) send(api::usage_chunk(r, g->meta, g->usage()));
          const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          sink.done();
          return true;
        },
        [g](bool) {
          for (auto& er : g->reqs) er->cancelled = true;
        });
  }
};

Server::Server(Llama& model, const Tokenizer& tok, const ChatTemplate& tmpl, ServerOptions opt)
    : impl_(std::make_unique<Impl>(model, tok, tmpl, std::move(opt))) {}

Server::~Server() { stop(); }

int Server::bind() {
  auto& o = impl_->opt;
  const int port = impl_->http.bind(o.host, o.port);
  if (port < 0) fail("cannot bind to ", o.host, ":", o.port, o.port ? " (in use?)" : "");
  return o.port = port;
}

void Server::run() { impl_->http.run(); }

void Server::stop() {
  if (impl_) impl_->stop();
}

}  // namespace camelid
