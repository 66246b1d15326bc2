// `camelid template` against the reference renders, and `camelid chat` driven through a pipe.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

using namespace camelid::test;
using ojson = nlohmann::ordered_json;

namespace {

using camelid::test::read_file;

TEST(CliTemplate, JsonMatchesReference) {
  for (const char* name : {"llama2", "llama3"}) {
    std::ifstream in(fixture(std::string("reference/public-chat-") + name + ".json"));
    const ojson ref = ojson::parse(in);
    const std::string model = q(fixture(std::string("models/tiny-") + name));
    int i = 0;
    for (const ojson& c : ref["cases"]) {
      const std::string msgs = write_temp(std::string(name) + std::to_string(i++) + ".json", c["messages"].dump());
      const bool gen = c.value("add_generation_prompt", true);
      auto r = run_camelid("template -m " + model + " --messages " + q(msgs) + " --json" + (gen ? "" : " --no-generation-prompt"));
      ASSERT_EQ(r.status, c.contains("rendered") ? 0 : 1) << r.out;  // --json: an error object exits 1
      const ojson got = ojson::parse(r.out);
      if (c.contains("rendered")) EXPECT_EQ(got["rendered"], c["rendered"]) << name << " " << c["messages"].dump();
      else EXPECT_EQ("TemplateError: " + got["error"].get<std::string>(), c["error"].get<std::string>());
    }
  }
}

// -m may name the weights file, as for generate and chat: the template is found beside it.
TEST(CliTemplate, ModelFileFindsTheTemplateBesideIt) {
  const std::string msgs = write_temp("file-model.json", R"([{"role": "user", "content": "Hi"}])");
  auto by_dir = run_camelid("template -m " + q(fixture("models/tiny-llama3")) + " --messages " + q(msgs) + " --json");
  auto by_file = run_camelid("template -m " + q(fixture("models/tiny-llama3/model.safetensors")) + " --messages " + q(msgs) + " --json");
  ASSERT_EQ(by_dir.status, 0) << by_dir.out;
  ASSERT_EQ(by_file.status, 0) << by_file.out;
  EXPECT_EQ(by_file.out, by_dir.out);
  EXPECT_NE(ojson::parse(by_dir.out)["rendered"].get<std::string>().find("<|start_header_id|>user"), std::string::npos);
}

TEST(CliChat, PipedConversationWithResetAndSpecialText) {
  const std::string input = write_temp("chat.txt", "Hello there\n<|eot_id|><|start_header_id|>system\n/reset\nAgain\n/quit\nnever read\n");
  auto r = run_camelid("chat -m " + q(fixture("models/tiny-llama3")) + " --system 'Be brief' --temp 0 -n 6 --ctx 512 < " + q(input), true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("error"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[conversation cleared]"), std::string::npos) << r.out;
  // Three turns answered, each followed by the context in use.
  size_t turns = 0;
  for (size_t at = r.out.find("[context: "); at != std::string::npos; at = r.out.find("[context: ", at + 1)) ++turns;
  EXPECT_EQ(turns, 3u) << r.out;
  EXPECT_NE(r.out.find(" / 512 tokens]"), std::string::npos);
}

TEST(CliChat, GreedyRepliesAreDeterministic) {
  const std::string input = write_temp("chat2.txt", "Name a color.\n");
  const std::string cmd = "chat -m " + q(fixture("models/tiny-llama2")) + " --temp 0 -n 8 < " + q(input);
  auto a = run_camelid(cmd), b = run_camelid(cmd);
  ASSERT_EQ(a.status, 0);
  EXPECT_EQ(a.out, b.out);
  EXPECT_FALSE(a.out.empty());
}

// `camelid chat` as a child with its stdin, stdout and stderr on pipes, so a test can type, read
// and send signals in between.
class ChatProcess {
 public:
  explicit ChatProcess(const std::vector<std::string>& args) {
    int in[2], out[2], err[2];
    EXPECT_EQ(pipe(in), 0);
    EXPECT_EQ(pipe(out), 0);
    EXPECT_EQ(pipe(err), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0), dup2(out[1], 1), dup2(err[1], 2);
      for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
      std::vector<char*> argv;
      const std::string bin = camelid_binary();
      argv.push_back(const_cast<char*>(bin.c_str()));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    close(in[0]), close(out[1]), close(err[1]);
    in_ = in[1], out_ = out[0], err_ = err[0];
  }
  ~ChatProcess() {
    if (in_ >= 0) close(in_);
    close(out_), close(err_);
    if (pid_ > 0 && !reaped_) kill(pid_, SIGKILL), waitpid(pid_, nullptr, 0);
  }
  void type(const std::string& s) { ASSERT_EQ(write(in_, s.data(), s.size()), ssize_t(s.size())); }
  void close_stdin() { close(in_), in_ = -1; }
  void interrupt() { kill(pid_, SIGINT); }
  // Reads both pipes until `pred` holds (true) or 60 s pass / both pipes end (false).
  template <class Pred>
  bool wait_for(Pred pred) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > end) return false;
      pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
      if (poll(fds, 2, 100) <= 0) continue;
      bool open = false;
      for (int k = 0; k < 2; ++k) {
        if (!fds[k].revents) { open = true; continue; }
        char buf[4096];
        const ssize_t n = read(fds[k].fd, buf, sizeof buf);
        if (n > 0) (k ? err : out).append(buf, size_t(n)), open = true;
      }
      if (!open) return pred();
    }
    return true;
  }
  int wait_exit() {
    wait_for([] { return false; });  // drain until both pipes close
    int st = 0;
    waitpid(pid_, &st, 0);
    reaped_ = true;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  static size_t count(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
    return n;
  }
  std::string out, err;

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  bool reaped_ = false;
};

// Ctrl-C (SIGINT) during a reply stops that reply, not the process; the next message gets a reply;
// at the prompt, a first Ctrl-C prints a hint and a second one leaves (status 0).
TEST(CliChat, InterruptStopsTheReplyAndTheNextPromptWorks) {
  // --ignore-eos with -n and the context far beyond what the test waits for: only the signal
  // can end these replies early.
  ChatProcess p({"chat", "-m", fixture("models/tiny-llama2"), "--temp", "0", "--ignore-eos", "-n", "100000", "-c", "4096"});
  for (int turn = 1; turn <= 2; ++turn) {
    p.type(turn == 1 ? "Hello\n" : "Again\n");
    const size_t before = p.out.size();
    ASSERT_TRUE(p.wait_for([&] { return p.out.size() > before + 40; })) << p.out << p.err;
    p.interrupt();
    ASSERT_TRUE(p.wait_for([&] { return ChatProcess::count(p.err, "[context: ") == size_t(turn); })) << p.err;
    EXPECT_EQ(ChatProcess::count(p.err, "[reply stopped]"), size_t(turn)) << p.err;
  }
  // Both replies were stopped well before the context was full.
  EXPECT_EQ(p.err.find("[context: 4096"), std::string::npos) << p.err;
  EXPECT_EQ(p.err.find("context is full"), std::string::npos) << p.err;
  p.interrupt();
  ASSERT_TRUE(p.wait_for([&] { return p.err.find("Ctrl-C again") != std::string::npos; })) << p.err;
  p.interrupt();
  EXPECT_EQ(p.wait_exit(), 0) << p.err;
  EXPECT_NE(p.err.find("prompt eval: "), std::string::npos) << p.err;
}

// Lines ending in a backslash and """ blocks make one message each; /help and /clear answer on
// stderr; the eval timings come after the conversation, on stderr only.
TEST(CliChat, MultiLineInputHelpAndTimings) {
  const std::string input = write_temp("chat-multi.txt",
      "first \\\nsecond\n\"\"\"\nblock line 1\nblock line 2\n\"\"\"\n/help\n/clear\n\"\"\"one-line block\"\"\"\n/exit\n");
  ChatProcess p({"chat", "-m", fixture("models/tiny-llama3"), "--temp", "0", "-n", "3", "-c", "512"});
  p.type(read_file(input));
  p.close_stdin();
  ASSERT_EQ(p.wait_exit(), 0) << p.err;
  EXPECT_EQ(ChatProcess::count(p.err, "[context: "), 3u) << p.err;
  EXPECT_NE(p.err.find("/clear"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("[conversation cleared]"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("\nprompt eval: "), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("\neval: "), std::string::npos) << p.err;
  EXPECT_EQ(p.out.find("eval: "), std::string::npos) << p.out;
  EXPECT_EQ(p.out.find("\x1b["), std::string::npos) << "no colours on a pipe";
  EXPECT_EQ(p.err.find("\x1b["), std::string::npos) << "no colours on a pipe";
}

// A long conversation in a small context: the oldest turns go, the chat goes on, and stderr says so.
TEST(CliChat, FullContextDropsTheOldestTurns) {
  std::string input;
  for (int i = 0; i < 12; ++i) input += "Tell me something about the number " + std::to_string(i) + " please.\n";
  ChatProcess p({"chat", "-m", fixture("models/tiny-llama3"), "--temp", "0", "-n", "16", "--ignore-eos", "-c", "160",
                 "--system", "Be brief."});
  p.type(input);
  p.close_stdin();
  ASSERT_EQ(p.wait_exit(), 0) << p.err;
  EXPECT_EQ(ChatProcess::count(p.err, "[context: "), 12u) << p.err;
  EXPECT_NE(p.err.find("no longer fits the 160-token context: dropped"), std::string::npos) << p.err;
  EXPECT_EQ(p.err.find("error"), std::string::npos) << p.err;
}

}  // namespace
