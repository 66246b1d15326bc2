#include "cli/interrupt.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>

namespace camelid::cli::interrupt {
namespace {
std::atomic<bool> g_flag{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");
int g_pipe[2] = {-1, -1};
extern "C" void on_sigint(int) {
  g_flag.store(true, std::memory_order_relaxed);
  const int saved = errno;
  if (g_pipe[1] >= 0) (void)!::write(g_pipe[1], "!", 1);  // full pipe: a wake-up is pending anyway
  errno = saved;
}
}  // namespace

void install() {
  if (g_pipe[0] < 0 && ::pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0) g_pipe[0] = g_pipe[1] = -1;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
}

bool pending() { return g_flag.load(std::memory_order_relaxed); }
void clear() {
  g_flag.store(false, std::memory_order_relaxed);
  char buf[64];
  if (g_pipe[0] >= 0)
    while (::read(g_pipe[0], buf, sizeof buf) > 0) {
    }
}

int wake_fd() { return g_pipe[0]; }

}  // namespace camelid::cli::interrupt
