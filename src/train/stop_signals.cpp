// Why this file exists: the signal handler behind StopSignals.
#include "train/stop_signals.h"

#include "core/context.h"

namespace ladder {
namespace {

void record_stop(int signal) {
  ProcessContext& context = ProcessContext::get();
  if (signal == SIGINT && context.stop_signal() == SIGINT) {  // Ctrl-C twice: stop now
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  context.request_stop(signal);
}

}  // namespace

StopSignals::StopSignals() {
  struct sigaction action = {};
  action.sa_handler = record_stop;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // blocking reads and waits go on; the trainer polls the flag
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &action, &previous_[i]);
}

StopSignals::~StopSignals() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &previous_[i], nullptr);
}

const char* StopSignals::name(int signal) {
  switch (signal) {
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGINT: return "SIGINT";
    default: return "a signal";
  }
}

}  // namespace ladder
