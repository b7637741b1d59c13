// Why this file exists: RAII for host memory. Every tensor and parameter buffer on the host
// allocates through HostBuffer, 64-byte aligned (SIMD, page-friendly) and counted in the
// process context so that peak memory is measured rather than guessed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sys/mman.h>
#include <utility>

#include "core/context.h"

namespace ladder {

template <class T>
class HostBuffer {
 public:
  HostBuffer() = default;
  explicit HostBuffer(int64_t count) { allocate(count); }
  ~HostBuffer() { release(); }

  HostBuffer(const HostBuffer& other) : HostBuffer(other.size_) {
    if (size_ > 0) std::memcpy(data_, other.data_, bytes());
  }
  HostBuffer& operator=(const HostBuffer& other) {
    if (this != &other) {
      HostBuffer copy(other);
      swap(copy);
    }
    return *this;
  }
  HostBuffer(HostBuffer&& other) noexcept { swap(other); }
  HostBuffer& operator=(HostBuffer&& other) noexcept {
    swap(other);
    return *this;
  }

  void swap(HostBuffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  int64_t size() const { return size_; }
  int64_t bytes() const { return size_ * static_cast<int64_t>(sizeof(T)); }

 private:
  static constexpr size_t kAlignment = 64;
  // Large buffers (image shards, activations) go on 2 MiB boundaries with transparent huge
  // pages requested: first-touch page faults otherwise cost more than reading an HDF5 store.
  static constexpr size_t kHugePage = size_t(2) << 20;

  void allocate(int64_t count) {
    if (count <= 0) return;
    size_t raw = static_cast<size_t>(count) * sizeof(T);
    size_t alignment = raw >= kHugePage ? kHugePage : kAlignment;
    size_t rounded = (raw + alignment - 1) / alignment * alignment;
    void* memory = std::aligned_alloc(alignment, rounded);
    if (memory == nullptr) throw std::bad_alloc();
    if (alignment == kHugePage) madvise(memory, rounded, MADV_HUGEPAGE);  // a hint; may be ignored
    std::memset(memory, 0, rounded);
    data_ = static_cast<T*>(memory);
    size_ = count;
    ProcessContext::get().host_memory().add(bytes());
  }

  void release() noexcept {
    if (data_ == nullptr) return;
    ProcessContext::get().host_memory().sub(bytes());
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace ladder
