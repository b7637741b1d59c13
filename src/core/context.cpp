// Why this file exists: defines the single process context instance.
#include "core/context.h"

namespace ladder {

void MemoryCounter::add(int64_t bytes) {
  int64_t now = current_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  int64_t seen = peak_.load(std::memory_order_relaxed);
  while (now > seen && !peak_.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}

ProcessContext& ProcessContext::get() {
  static ProcessContext context;
  return context;
}

}  // namespace ladder
