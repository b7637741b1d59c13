// Why this file exists: the kernel benchmarks time several functions against each other on a
// shared machine; they share this one way of doing it (a warm-up round, then rounds that run
// every function once, interleaved, so that load from other processes hits all alike) and
// the seeded random inputs.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/rng.h"

namespace ladder::bench {

struct Timing {
  double median_s = 0, best_s = 0;
};

inline double seconds_of(const std::function<void()>& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The median and best seconds of each function over `repeats` interleaved rounds.
inline std::vector<Timing> time_rounds(int repeats, const std::vector<std::function<void()>>& fns) {
  for (const auto& fn : fns) fn();
  std::vector<std::vector<double>> seconds(fns.size());
  for (int r = 0; r < repeats; ++r)
    for (size_t i = 0; i < fns.size(); ++i) seconds[i].push_back(seconds_of(fns[i]));
  std::vector<Timing> out;
  for (auto& s : seconds) {
    std::sort(s.begin(), s.end());
    out.push_back({s[s.size() / 2], s.front()});
  }
  return out;
}

// `count` values uniform in [−1, 1) from the stream (seed, stream).
inline std::vector<float> random_vector(int64_t count, uint64_t seed, uint64_t stream) {
  Rng rng(seed, stream);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = static_cast<float>(rng.uniform(-1.0, 1.0));
  return v;
}

}  // namespace ladder::bench
