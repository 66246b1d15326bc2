#pragma once
// Ctrl-C for interactive commands: SIGINT only raises a flag, which the token loop and the
// prompt reader check, so a reply can be stopped without ending the process.
namespace camelid::cli::interrupt {

// Installs the handler. Without SA_RESTART: a read blocked at the prompt returns EINTR, so the
// reader sees the Ctrl-C at once.
void install();
bool pending();
void clear();  // also empties wake_fd
// Readable once a SIGINT has come (the handler writes a byte to a pipe), so a reader can poll
// stdin and this together and never miss a Ctrl-C that came just before it blocked. -1 before
// install().
int wake_fd();

}  // namespace camelid::cli::interrupt
