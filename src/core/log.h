// Why this file exists: one logger. Informational lines come from rank 0 only (N ranks would
// print N copies); warnings and errors carry the rank and come from every rank.
#pragma once

#include <string>

#include "core/check.h"

namespace ladder {

void log_line(const std::string& text);          // rank 0 only, to stdout
void log_warning_line(const std::string& text);  // every rank, to stderr, "[rank R]" prefix

template <class... Args>
void log_info(const Args&... args) {
  log_line(detail::concat(args...));
}

template <class... Args>
void log_warning(const Args&... args) {
  log_warning_line(detail::concat(args...));
}

}  // namespace ladder
