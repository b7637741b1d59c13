// Why this file exists: one monotonic clock for the durations the engine logs and measures
// (steps, checkpoint stalls, evaluations, progress lines), in seconds.
#pragma once

#include <chrono>

namespace ladder {

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace ladder
