// Why this file exists: the logger's output policy (who prints, where, with which prefix).
#include "core/log.h"

#include <unistd.h>

#include <cstdio>

#include "core/context.h"

namespace ladder {

namespace {

// Ends an open status line so that the next output starts on a line of its own.
void close_status_line() {
  ProcessContext& context = ProcessContext::get();
  if (!context.status_line_open()) return;
  std::fputc('\n', stdout);
  std::fflush(stdout);
  context.set_status_line_open(false);
}

}  // namespace

void log_line(const std::string& text) {
  if (ProcessContext::get().rank() != 0) return;
  close_status_line();
  std::fprintf(stdout, "%s\n", text.c_str());
  std::fflush(stdout);
}

void log_status(const std::string& text, bool redraw) {
  if (!redraw) return log_line(text);
  ProcessContext& context = ProcessContext::get();
  if (context.rank() != 0) return;
  std::fprintf(stdout, "\r\033[K%s", text.c_str());
  std::fflush(stdout);
  context.set_status_line_open(true);
}

bool stdout_is_terminal() { return ::isatty(fileno(stdout)) == 1; }

void log_warning_line(const std::string& text) {
  if (ProcessContext::get().rank() == 0) close_status_line();
  const ProcessContext& context = ProcessContext::get();
  if (context.world() > 1)
    std::fprintf(stderr, "[rank %d] warning: %s\n", context.rank(), text.c_str());
  else
    std::fprintf(stderr, "warning: %s\n", text.c_str());
  std::fflush(stderr);
}

}  // namespace ladder
