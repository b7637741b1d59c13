// Why this file exists: the logger's output policy (who prints, where, with which prefix).
#include "core/log.h"

#include <cstdio>

#include "core/context.h"

namespace ladder {

void log_line(const std::string& text) {
  if (ProcessContext::get().rank() != 0) return;
  std::fprintf(stdout, "%s\n", text.c_str());
  std::fflush(stdout);
}

void log_warning_line(const std::string& text) {
  const ProcessContext& context = ProcessContext::get();
  if (context.world() > 1)
    std::fprintf(stderr, "[rank %d] warning: %s\n", context.rank(), text.c_str());
  else
    std::fprintf(stderr, "warning: %s\n", text.c_str());
  std::fflush(stderr);
}

}  // namespace ladder
