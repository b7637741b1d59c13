// Why this file exists: the watchdog thread that turns a collective past its deadline into
// an error line and exit code 1 (see collective_watchdog.h).
//
// Ending the process from this thread is safe for checkpoints: shards are written into
// checkpoints/.tmp-step-N/ and a checkpoint becomes visible only by renames on the main
// thread (io/checkpoint_files.cpp, CheckpointDirectory::commit), so a writer thread cut off
// mid-write leaves a temporary directory that is never loaded and is removed on resume.
#include "comm/collective_watchdog.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "core/check.h"
#include "core/context.h"

namespace ladder {
namespace {

// main()'s exit code for a runtime failure (an Error that is not a UsageError).
constexpr int kExitFailure = 1;

// Deadlines stay representable in the clock (timeouts past a year behave as a year).
std::chrono::steady_clock::duration clock_duration(double seconds) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(std::min(seconds, 365.0 * 24 * 3600)));
}

}  // namespace

CollectiveWatchdog::CollectiveWatchdog(int rank, double timeout_s)
    : rank_(rank), timeout_s_(timeout_s), timeout_(clock_duration(timeout_s)) {
  LADDER_CHECK(timeout_s > 0, "comm timeout must be > 0 s (got ", timeout_s, ")");
  thread_ = std::thread([this] { watch(); });
}

CollectiveWatchdog::~CollectiveWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

int64_t CollectiveWatchdog::nanoseconds(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

CollectiveWatchdog::Armed::Armed(CollectiveWatchdog& watchdog, const char* op, int64_t count,
                                 DType dtype)
    : watchdog_(watchdog) {
  LADDER_CHECK(watchdog.deadline_ns_.load(std::memory_order_relaxed) == 0, "rank ",
               watchdog.rank_, ": collective ", op, " started while ", watchdog.op_.load(),
               " is still running (one collective at a time per communicator)");
  watchdog.op_.store(op, std::memory_order_release);
  watchdog.count_.store(count, std::memory_order_release);
  watchdog.dtype_.store(dtype, std::memory_order_release);
  watchdog.deadline_ns_.store(nanoseconds(Clock::now() + watchdog.timeout_),
                              std::memory_order_release);
  // No notify: the thread already sleeps until a time no later than this deadline (watch()).
}

CollectiveWatchdog::Armed::~Armed() { watchdog_.deadline_ns_.store(0, std::memory_order_release); }

std::string CollectiveWatchdog::timeout_message(int rank, const char* op, int64_t count,
                                                DType dtype, double timeout_s) {
  const std::string what = count < 0 ? std::string()
                                     : detail::concat(" of ", count, " ", dtype_name(dtype));
  return detail::concat("rank ", rank, ": collective ", op, what, " did not complete within ",
                        timeout_s, " s (a peer failed or is stuck)");
}

void CollectiveWatchdog::watch() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    const Clock::time_point now = Clock::now();
    const int64_t deadline = deadline_ns_.load(std::memory_order_acquire);
    if (deadline != 0 && nanoseconds(now) >= deadline) {
      const char* op = op_.load(std::memory_order_acquire);
      const int64_t count = count_.load(std::memory_order_acquire);
      const DType dtype = dtype_.load(std::memory_order_acquire);
      if (deadline_ns_.load(std::memory_order_acquire) == deadline) expire(op, count, dtype);
      continue;  // that collective completed just now; look again
    }
    // Disarmed, it still wakes once per timeout: any deadline armed meanwhile lies at least
    // that far ahead, so arming never has to wake this thread.
    const Clock::time_point wake =
        deadline != 0 ? Clock::time_point(std::chrono::nanoseconds(deadline)) : now + timeout_;
    wake_.wait_until(lock, wake);
  }
}

void CollectiveWatchdog::expire(const char* op, int64_t count, DType dtype) {
  // The line main() prints for an uncaught Error (src/cli/main.cpp), written with write(2):
  // no stdio lock that another thread might hold, nothing that could block the exit.
  const ProcessContext& context = ProcessContext::get();
  const std::string line =
      (context.world() > 1 ? detail::concat("ladder: error on rank ", context.rank(), ": ")
                           : std::string("ladder: error: ")) +
      timeout_message(rank_, op, count, dtype, timeout_s_) + "\n";
  for (size_t written = 0; written < line.size();) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + written, line.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  // No MPI call from this thread (MPI_THREAD_FUNNELED), so no MPI_Abort: the process ends
  // here with main()'s failure code, and mpirun ends every other rank of the job.
  std::_Exit(kExitFailure);
}

}  // namespace ladder
