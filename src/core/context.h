// Why this file exists: the one place for process-wide state (BRIEF: no global mutable state
// beyond the process context): this process's rank and world size, the host-memory
// counters that feed `mem_peak_bytes`, and the stop request a signal handler leaves for the
// trainer (train/stop_signals.h), and whether the logger's status line is open on the terminal.
#pragma once

#include <atomic>
#include <cstdint>

namespace ladder {

// Current and peak bytes of a memory pool; updated by the RAII buffers that allocate from it.
class MemoryCounter {
 public:
  void add(int64_t bytes);
  void sub(int64_t bytes) { current_.fetch_sub(bytes, std::memory_order_relaxed); }
  int64_t current() const { return current_.load(std::memory_order_relaxed); }
  int64_t peak() const { return peak_.load(std::memory_order_relaxed); }
  // Starts a new peak window at the current level (e.g. per logged step).
  void reset_peak() { peak_.store(current(), std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> current_{0};
  std::atomic<int64_t> peak_{0};
};

class ProcessContext {
 public:
  static ProcessContext& get();

  int rank() const { return rank_; }
  int world() const { return world_; }
  void set_topology(int rank, int world) { rank_ = rank; world_ = world; }

  MemoryCounter& host_memory() { return host_memory_; }

  // The signal that asked this process to stop (SIGTERM, SIGUSR1, SIGINT), 0 if none. Set from
  // a signal handler (a lock-free atomic store is async-signal-safe), read by the trainer at
  // optimizer-step boundaries.
  void request_stop(int signal) { stop_signal_.store(signal, std::memory_order_relaxed); }
  int stop_signal() const { return stop_signal_.load(std::memory_order_relaxed); }
  // The progress line redrawn in place on a terminal (core/log.h): whether it is on screen
  // without its newline yet.
  bool status_line_open() const { return status_line_open_; }
  void set_status_line_open(bool open) { status_line_open_ = open; }

 private:
  ProcessContext() = default;
  int rank_ = 0;
  int world_ = 1;
  MemoryCounter host_memory_;
  std::atomic<int> stop_signal_{0};
  bool status_line_open_ = false;
  static_assert(std::atomic<int>::is_always_lock_free, "stop_signal_ is set in a signal handler");
};

}  // namespace ladder
