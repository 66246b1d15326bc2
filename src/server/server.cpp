#include "server/server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <strings.h>
#include <semaphore>
#include <set>
#include <thread>

#include "chat/chat_prompt.h"
#include "chat/jinja.h"
#include "core/json.h"
#include "server/http_guard.h"
#include "server/openai_api.h"
#include "server/stop_strings.h"
#include "server/structured_output.h"

namespace camelid {

using api::json;

namespace {

// Tokens flowing from the engine thread to the HTTP handler of one request.
struct TokenChannel {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<int> tokens;
  bool done = false;
  std::string finish;
  int prompt_tokens = 0, completion_tokens = 0;
  std::chrono::steady_clock::time_point last_check = std::chrono::steady_clock::now();

  // Waits for the next token (true) or the end (false), calling `waiting` every 100 ms meanwhile
  // (to notice a client that has gone, or a server stop).
  template <class F>
  bool next(int& id, F&& waiting) {
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last_check >= std::chrono::milliseconds(100)) {  // however fast tokens come
        last_check = now;
        lk.unlock();
        waiting();
        lk.lock();
      }
      if (cv.wait_until(lk, last_check + std::chrono::milliseconds(100), [&] { return !tokens.empty() || done; })) break;
    }
    if (tokens.empty()) return false;
    id = tokens.front();
    tokens.pop_front();
    return true;
  }
};

// The routes, so that a known path with the wrong method gets 405 (with Allow), not 404.
struct Route {
  const char* path;
  const char* method;
};
constexpr Route kRoutes[] = {
    {"/health", "GET"}, {"/v1/models", "GET"}, {"/v1/completions", "POST"}, {"/v1/chat/completions", "POST"}};

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
  std::counting_semaphore<> preparing{std::max(2, int(std::thread::hardware_concurrency()))};
  std::once_flag vocab_once;  // the token trie for structured output, built at its first use
  std::shared_ptr<const TokenVocab> vocab;

  using HandlerResponse = httplib::Server::HandlerResponse;

  Impl(Llama& m, const Tokenizer& t, const ChatTemplate& ct, ServerOptions o)
      : model(m), tok(t), tmpl(ct), opt(std::move(o)), stop_ids(end_of_turn_ids(t, m.config().eos_ids)),
        engine(m, opt.parallel, opt.ctx), http(opt.limits) {
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      try {
        return pre_route(req, res);
      } catch (...) {
        send_error(res, api::ApiError(500, "internal error while routing", "server_error"));
        return HandlerResponse::Handled;
      }
    });
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      const EngineStats st = engine.stats();
      json j = {{"status", "ok"}, {"requests_active", st.active}, {"requests_queued", st.queued},
                {"connections", http.connections()}};
      res.set_content(dump_json(j), "application/json");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      json j = {{"object", "list"},
                {"data", json::array({{{"id", opt.model_name}, {"object", "model"}, {"created", unix_now()},
                                       {"owned_by", "camelid"}}})}};
      res.set_content(dump_json(j), "application/json");
    });
    http.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& r, const httplib::ContentReader& c) {
      handle(q, r, c, false);
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
    if (!opt.api_key.empty() && req.path != "/health" &&
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

  // One request, start to end: nothing may escape (the process must outlive any request).
  void handle(const httplib::Request&, httplib::Response& res, const httplib::ContentReader& read, bool chat) {
    try {
      api::CompletionRequest r;
      std::vector<int> ids;
      {
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
        r = api::parse_completion_request(body.text, chat, random_seed());
        if (!r.model.empty() && r.model != opt.model_name)
          throw api::ApiError(404, "The model '" + r.model + "' does not exist (this server runs '" + opt.model_name + "')",
                              "invalid_request_error", "model", "model_not_found");
        ids = prompt_ids(r);
      }
      if (int(ids.size()) >= engine.ctx())
        throw api::ApiError(400, "This model's context is " + std::to_string(engine.ctx()) + " tokens, but the prompt has " +
                                     std::to_string(ids.size()) + " tokens", "invalid_request_error", "messages",
                            "context_length_exceeded");
      run(r, std::move(ids), res);
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

  void run(const api::CompletionRequest& r, std::vector<int> ids, httplib::Response& res) {
    auto ch = std::make_shared<TokenChannel>();
    auto er = std::make_shared<EngineRequest>();
    const int room = engine.ctx() - int(ids.size());
    er->max_tokens = r.max_tokens < 0 ? room : std::min(r.max_tokens, room);
    er->prompt = std::move(ids);
    er->sampling = r.sampling;
    er->stop_ids = stop_ids;
    if (r.grammar) {
      std::call_once(vocab_once, [this] { vocab = grammar_vocab(tok); });
      er->constraint = std::make_shared<GrammarConstraint>(r.grammar, vocab, stop_ids);
    }
    er->on_token = [ch](int id) {
      { std::lock_guard<std::mutex> lk(ch->mu); ch->tokens.push_back(id); }
      ch->cv.notify_all();
      return true;
    };
    er->on_finish = [ch](const std::string& reason, int p, int c) {
      { std::lock_guard<std::mutex> lk(ch->mu);
        ch->done = true, ch->finish = reason, ch->prompt_tokens = p, ch->completion_tokens = c; }
      ch->cv.notify_all();
    };
    const std::string id = (r.chat ? "chatcmpl-" : "cmpl-") + std::to_string(unix_now()) + "-" + std::to_string(++counter);
    const long created = unix_now();
    track(er);
    struct Untrack {
      Untrack(Impl* i, std::shared_ptr<EngineRequest> r) : impl(i), er(std::move(r)) {}
      ~Untrack() { impl->untrack(er); }
      Impl* impl;
      std::shared_ptr<EngineRequest> er;
    };
    auto untrack_later = std::make_shared<Untrack>(this, er);  // lives as long as the stream
    engine.submit(er);

    // Decoded text with stop strings applied; finish reason as OpenAI reports it.
    struct Stream {
      StreamDecoder dec;
      StopStringFilter stops;
      std::string finish;
    };
    auto st = std::make_shared<Stream>(Stream{StreamDecoder(tok), StopStringFilter(r.stop), ""});
    // While waiting: a client that has gone (or a server stop) frees its slot at the next step.
    auto check = [er] {
      if (!er->cancelled && GuardedHttpServer::client_gone()) er->cancelled = true;
    };
    // Returns the next piece of text; false when generation is over (st->finish set).
    auto pull = [ch, er, st, check](std::string& text) {
      int tid;
      text.clear();
      while (text.empty()) {
        if (!ch->next(tid, check)) {
          text = st->stops.push(st->dec.flush());
          text += st->stops.flush();
          std::lock_guard<std::mutex> lk(ch->mu);
          st->finish = st->stops.stopped() ? "stop" : ch->finish == "length" ? "length" : "stop";
          return false;
        }
        text = st->stops.push(st->dec.push(tid));
        if (st->stops.stopped()) {
          er->cancelled = true;  // frees the slot at the engine's next step
          std::unique_lock<std::mutex> lk(ch->mu);
          ch->cv.wait(lk, [&] { return ch->done; });
          st->finish = "stop";
          return false;
        }
      }
      return true;
    };
    auto usage = [ch] {
      std::lock_guard<std::mutex> lk(ch->mu);
      return api::Usage{ch->prompt_tokens, ch->completion_tokens};
    };
    const std::string model_name = opt.model_name;

    if (!r.stream) {
      std::string all, piece;
      bool more = true;
      while (more) {
        more = pull(piece);
        all += piece;
      }
      if (ch->finish.rfind("error", 0) == 0) throw api::ApiError(500, ch->finish, "server_error");
      res.set_content(dump_json(api::completion_response(r, id, created, model_name, all, st->finish, usage())),
                      "application/json");
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    auto sent_role = std::make_shared<bool>(false);
    auto finished = std::make_shared<bool>(false);
    res.set_chunked_content_provider(
        "text/event-stream",
        [=](size_t, httplib::DataSink& sink) {
          auto send = [&](const json& j) {
            const std::string s = "data: " + dump_json(j) + "\n\n";
            return sink.write(s.data(), s.size());
          };
          if (*finished) return false;
          if (r.chat && !*sent_role) {
            *sent_role = true;
            if (!send(api::completion_chunk(r, id, created, model_name, "", "", true))) return er->cancelled = true, false;
            return true;
          }
          std::string piece;
          const bool more = pull(piece);
          if (!piece.empty() && !send(api::completion_chunk(r, id, created, model_name, piece, "")))
            return er->cancelled = true, false;  // client went away: free its slot
          if (more) return true;
          *finished = true;
          send(api::completion_chunk(r, id, created, model_name, "", st->finish));
          if (r.include_usage) send(api::usage_chunk(r, id, created, model_name, usage()));
          const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          sink.done();
          return true;
        },
        [er, untrack_later](bool) { er->cancelled = true; });
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
