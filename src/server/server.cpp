#include "server/server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>

#include "chat/chat_prompt.h"
#include "server/openai_api.h"
#include "server/stop_strings.h"

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

  // Waits for the next token (true) or the end (false).
  bool next(int& id) {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return !tokens.empty() || done; });
    if (tokens.empty()) return false;
    id = tokens.front();
    tokens.pop_front();
    return true;
  }
};

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
  httplib::Server http;
  std::atomic<uint64_t> counter{0};
  std::mt19937_64 seeds{std::random_device{}()};
  std::mutex seed_mu;

  Impl(Llama& m, const Tokenizer& t, const ChatTemplate& ct, ServerOptions o)
      : model(m), tok(t), tmpl(ct), opt(std::move(o)), stop_ids(end_of_turn_ids(t, m.config().eos_ids)),
        engine(m, opt.parallel, opt.ctx) {
    // One HTTP thread per streaming client plus a few for quick requests.
    const int threads = opt.parallel * 2 + 4;
    http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http.set_payload_max_length(64 << 20);
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (opt.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
      if (req.get_header_value("Authorization") == "Bearer " + opt.api_key)
        return httplib::Server::HandlerResponse::Unhandled;
      send_error(res, api::ApiError(401, "Incorrect or missing API key", "invalid_request_error", "", "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    });
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"status":"ok"})", "application/json");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      json j = {{"object", "list"},
                {"data", json::array({{{"id", opt.model_name}, {"object", "model"}, {"created", unix_now()},
                                       {"owned_by", "camelid"}}})}};
      res.set_content(j.dump(), "application/json");
    });
    http.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& r) { handle(q, r, false); });
    http.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& r) { handle(q, r, true); });
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      const int st = res.status;
      send_error(res, api::ApiError(st, st == 404 ? "no route for " + req.method + " " + req.path : "HTTP error " + std::to_string(st),
                                    st == 404 ? "not_found_error" : "invalid_request_error"));
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

  static void send_error(httplib::Response& res, const api::ApiError& e) {
    res.status = e.status;
    res.set_content(e.to_json().dump(), "application/json");
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
    } catch (const Error& e) {
      throw api::ApiError(400, std::string("chat template: ") + e.what(), "invalid_request_error", "messages");
    }
  }

  void handle(const httplib::Request& req, httplib::Response& res, bool chat) {
    try {
      auto r = api::parse_completion_request(req.body, chat, random_seed());
      if (!r.model.empty() && r.model != opt.model_name)
        throw api::ApiError(404, "The model '" + r.model + "' does not exist (this server runs '" + opt.model_name + "')",
                            "invalid_request_error", "model", "model_not_found");
      auto ids = prompt_ids(r);
      if (int(ids.size()) >= engine.ctx())
        throw api::ApiError(400, "This model's context is " + std::to_string(engine.ctx()) + " tokens, but the prompt has " +
                                     std::to_string(ids.size()) + " tokens", "invalid_request_error", "messages",
                            "context_length_exceeded");
      run(r, std::move(ids), res);
    } catch (const api::ApiError& e) {
      send_error(res, e);
    } catch (const Error& e) {
      send_error(res, api::ApiError(400, e.what()));
    }
  }

  void run(const api::CompletionRequest& r, std::vector<int> ids, httplib::Response& res) {
    auto ch = std::make_shared<TokenChannel>();
    auto er = std::make_shared<EngineRequest>();
    const int room = engine.ctx() - int(ids.size());
    er->max_tokens = r.max_tokens < 0 ? room : std::min(r.max_tokens, room);
    er->prompt = std::move(ids);
    er->sampling = r.sampling;
    er->stop_ids = stop_ids;
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
    engine.submit(er);

    // Decoded text with stop strings applied; finish reason as OpenAI reports it.
    struct Stream {
      StreamDecoder dec;
      StopStringFilter stops;
      std::string finish;
    };
    auto st = std::make_shared<Stream>(Stream{StreamDecoder(tok), StopStringFilter(r.stop), ""});
    // Returns the next piece of text; false when generation is over (st->finish set).
    auto pull = [ch, er, st](std::string& text) {
      int tid;
      text.clear();
      while (text.empty()) {
        if (!ch->next(tid)) {
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
      res.set_content(api::completion_response(r, id, created, model_name, all, st->finish, usage()).dump(),
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
            const std::string s = "data: " + j.dump() + "\n\n";
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
        [er](bool) { er->cancelled = true; });
  }
};

Server::Server(Llama& model, const Tokenizer& tok, const ChatTemplate& tmpl, ServerOptions opt)
    : impl_(std::make_unique<Impl>(model, tok, tmpl, std::move(opt))) {}

Server::~Server() { stop(); }

int Server::bind() {
  auto& o = impl_->opt;
  if (o.port == 0) {
    o.port = impl_->http.bind_to_any_port(o.host);
    if (o.port < 0) fail("cannot bind to ", o.host);
  } else if (!impl_->http.bind_to_port(o.host, o.port)) {
    fail("cannot bind to ", o.host, ":", o.port, " (in use?)");
  }
  return o.port;
}

void Server::run() { impl_->http.listen_after_bind(); }

void Server::stop() {
  if (impl_) impl_->http.stop();
}

}  // namespace camelid
