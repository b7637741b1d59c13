// Why this file exists: a blocking MPI collective cannot be interrupted, so a peer that died
// or is stuck would hang its caller for ever. CollectiveWatchdog is one thread beside the
// caller: armed with a deadline and a description before each collective, disarmed after.
// If the deadline passes while it is armed, it prints the one error line main() prints for
// a runtime failure (naming the rank, the operation, the count, the dtype and the timeout)
// and ends the process with exit code 1; the launcher (mpirun) then ends the other ranks.
// It never calls MPI (MpiSession asks for MPI_THREAD_FUNNELED: only the main thread may),
// only write(2) and std::_Exit. Arming is a clock read and a few stores: no lock, no system
// call.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "comm/communicator.h"

namespace ladder {

class CollectiveWatchdog {
 public:
  // `rank` is the caller's rank in the communicator it guards (the message names it).
  CollectiveWatchdog(int rank, double timeout_s);
  ~CollectiveWatchdog();  // stops and joins the thread
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  // Armed for one collective, from construction to destruction (also when it throws).
  // `op` must outlive the arming (a string literal); count < 0 leaves the count out of the
  // message (barrier, split).
  class Armed {
   public:
    Armed(CollectiveWatchdog& watchdog, const char* op, int64_t count, DType dtype);
    ~Armed();
    Armed(const Armed&) = delete;
    Armed& operator=(const Armed&) = delete;

   private:
    CollectiveWatchdog& watchdog_;
  };

  // What the error says, e.g. "rank 3: collective all_reduce_sum of 1048576 f32 did not
  // complete within 300 s (a peer failed or is stuck)".
  static std::string timeout_message(int rank, const char* op, int64_t count, DType dtype,
                                     double timeout_s);

 private:
  using Clock = std::chrono::steady_clock;

  static int64_t nanoseconds(Clock::time_point t);
  void watch();                                                      // the thread's loop
  [[noreturn]] void expire(const char* op, int64_t count, DType dtype);  // prints, ends

  const int rank_;
  const double timeout_s_;
  const Clock::duration timeout_;
  // What is armed, written by the collective's thread without a lock (release), read by the
  // watchdog (acquire): the deadline in steady-clock nanoseconds, 0 while disarmed, and the
  // description. Each arming has its own deadline (the clock moves on between two), so a
  // description read between two loads of the same deadline belongs to that deadline.
  std::atomic<int64_t> deadline_ns_{0};
  std::atomic<const char*> op_{""};
  std::atomic<int64_t> count_{-1};
  std::atomic<DType> dtype_{DType::kF32};
  std::mutex mutex_;  // for stop_ and the thread's sleep
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once every member above is initialised
};

}  // namespace ladder
