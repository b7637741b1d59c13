// Why this file exists: preemption (BRIEF §5). While a StopSignals lives, SIGTERM, SIGUSR1 and
// SIGINT only record themselves in the process context; the trainer reads the record at the
// next optimizer-step boundary, where the ranks agree (a collective, never in a handler),
// write a checkpoint and exit with code 75. A second SIGINT ends the process at once, as a
// user pressing Ctrl-C twice expects. The previous handlers come back on destruction.
#pragma once

#include <csignal>

namespace ladder {

class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  static const char* name(int signal);  // "SIGTERM", ...

 private:
  static constexpr int kSignals[] = {SIGTERM, SIGUSR1, SIGINT};
  struct sigaction previous_[3];
};

}  // namespace ladder
