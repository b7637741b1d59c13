// Why this file exists: a long piece of work outside the training loop (an evaluation of
// 10,000 samples) says where it is: rank 0 logs, at most every `every_s` seconds, what it
// does, how many of its items are done, the rate and the ETA of its share (every rank has an
// equal share, so rank 0's ETA is the job's).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include "core/clock.h"
#include "core/format.h"
#include "core/log.h"

namespace ladder {

class WorkProgress {
 public:
  WorkProgress(std::string what, int64_t total, double every_s = 10)
      : what_(std::move(what)), total_(total), every_s_(every_s), start_(now_seconds()), last_(start_) {}

  // `done` of this rank's `total` items are finished.
  void advance(int64_t done) {
    const double t = now_seconds();
    if (t - last_ < every_s_ || done <= 0 || done >= total_) return;
    last_ = t;
    const double rate = static_cast<double>(done) / (t - start_);
    char line[96];
    std::snprintf(line, sizeof line, ": %lld/%lld of this rank's, %.2f/s, ETA %s", static_cast<long long>(done),
                  static_cast<long long>(total_), rate,
                  duration_text(static_cast<double>(total_ - done) / rate).c_str());
    log_info(what_, line);
  }

 private:
  std::string what_;
  int64_t total_;
  double every_s_, start_, last_;
};

}  // namespace ladder
