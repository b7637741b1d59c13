// Why this file exists: one logger. Informational lines come from rank 0 only (N ranks would
// print N copies); warnings and errors carry the rank and come from every rank.
#pragma once

#include <string>

#include "core/check.h"

namespace ladder {

void log_line(const std::string& text);          // rank 0 only, to stdout
void log_warning_line(const std::string& text);  // every rank, to stderr, "[rank R]" prefix
// Rank 0: a status line (the progress) redrawn in place, "\r" + clear to the end of the line,
// without a newline; the next log line first ends it. redraw = false: a plain log line.
void log_status(const std::string& text, bool redraw);
// Whether stdout is a terminal (log.progress = auto redraws only there; under mpirun it is not).
bool stdout_is_terminal();

template <class... Args>
void log_info(const Args&... args) {
  log_line(detail::concat(args...));
}

template <class... Args>
void log_warning(const Args&... args) {
  log_warning_line(detail::concat(args...));
}

}  // namespace ladder
