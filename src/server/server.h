#pragma once
// OpenAI-compatible HTTP server (cpp-httplib) in front of the continuous-batching engine.
// Handlers only parse, tokenize and stream; all model work happens on the engine thread.
#include <memory>
#include <optional>
#include <string>

#include "chat/chat_template.h"
#include "model/llama.h"
#include "runtime/engine.h"
#include "runtime/speculative.h"
#include "server/http_limits.h"
#include "tokenizer/tokenizer.h"

namespace httplib { class Server; }

namespace camelid {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;            // 0: any free port
  std::string api_key;        // empty: no authentication
  int parallel = 4;           // sequences decoded together
  int ctx = 4096;             // context per sequence (`serve` picks one that fits the memory)
  long kv_budget_tokens = 0;  // positions the paged KV cache may hold over all sequences (0: parallel x ctx)
  int prefill_chunk = 0;      // prompt tokens per step while others decode (0: Engine's default)
  std::string model_name;     // id reported by /v1/models and in responses (any requested "model" is served)
  HttpLimits limits;          // what one client may cost (connections, sizes, timeouts)
  // Speculative decoding (needs parallel == 1): requests without a grammar, tool_choice
  // enforcement or logprobs are generated speculatively; the others decode plainly.
  std::optional<SpeculativeOptions> speculative;
};

class Server {
 public:
  Server(Llama& model, const Tokenizer& tok, const ChatTemplate& tmpl, ServerOptions opt);
  ~Server();

  int bind();   // binds the socket; returns the port (useful with port 0)
  void run();   // serves until stop()
  void stop();  // from any thread: cancels every request in flight; run() returns within ~1 s

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace camelid
