// `camelid serve`: the OpenAI-compatible HTTP server.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "server/server.h"

namespace camelid::cli {
namespace {

struct ServeArgs {
  std::string model, name;
  ServerOptions opt;
  int threads = 0;
};

Server* g_server = nullptr;

void run(ServeArgs& a) {
  set_threads(a.threads);
  if (a.opt.parallel < 1 || a.opt.parallel > 256) fail("--parallel must be in 1..256, got ", a.opt.parallel);
  if (a.opt.ctx < 8) fail("--ctx must be >= 8, got ", a.opt.ctx);
  if (a.opt.port < 0 || a.opt.port > 65535) fail("--port must be in 0..65535");
  auto model = load_llama(a.model);
  auto tok = load_tokenizer_for(a.model, "");
  ChatTemplate tmpl = ChatTemplate::from_model_dir(model_dir(a.model));
  std::filesystem::path p(a.model);
  a.opt.model_name = !a.name.empty() ? a.name : (p.has_filename() ? p.filename() : p.parent_path().filename()).string();
  a.opt.ctx = std::min(a.opt.ctx, model->config().max_seq_len);
  Server server(*model, *tok, tmpl, a.opt);
  const int port = server.bind();
  g_server = &server;
  std::signal(SIGINT, [](int) { if (g_server) g_server->stop(); });
  std::signal(SIGTERM, [](int) { if (g_server) g_server->stop(); });
  std::printf("camelid: serving %s (%d parallel, %d-token context%s) - listening on http://%s:%d\n",
              a.opt.model_name.c_str(), a.opt.parallel, a.opt.ctx, kernels::bf16_dot_active() ? ", bf16 dot" : "",
              a.opt.host.c_str(), port);
  std::fflush(stdout);
  server.run();
  g_server = nullptr;
}

const bool reg = add_command([](CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  auto* sub = app.add_subcommand("serve", "OpenAI-compatible HTTP server with continuous batching");
  sub->add_option("-m,--model", a->model, "model directory")->required();
  sub->add_option("--host", a->opt.host, "address to bind (default 127.0.0.1)");
  sub->add_option("--port", a->opt.port, "port (0 = any free port)");
  sub->add_option("--api-key", a->opt.api_key, "require Authorization: Bearer KEY");
  sub->add_option("--parallel", a->opt.parallel, "sequences decoded together");
  sub->add_option("--ctx", a->opt.ctx, "context size per sequence");
  sub->add_option("--name", a->name, "model id reported to clients (default: directory name)");
  sub->add_option("--threads", a->threads, "threads (0 = all cores)");
  add_bf16_dot_flag(sub);
  sub->callback([a] { run(*a); });
});

}  // namespace
}  // namespace camelid::cli
