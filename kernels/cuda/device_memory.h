// Why this file exists: RAII for GPU memory, streams and events (in the tiny-cuda-nn style).
// Every device allocation of the engine goes through a DeviceAllocator, which counts current
// and peak bytes (the trainer's `mem_peak_bytes` on GPUs) and turns an out-of-memory into a
// DeviceOutOfMemory error that says what was asked for and what the device had left, so the
// trainer can add the rung and micro-batch and suggest recompute or a smaller micro-batch.
//
// Ownership: there is no global allocator. The trainer (or a test) owns one DeviceAllocator per
// device and passes it to whatever allocates; DeviceBuffers keep a pointer to it and must not
// outlive it. Allocation is on the device current at the time of the call.
//
// Plain C++ header (no CUDA syntax): host code compiled by g++ includes it.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

#include "core/check.h"
#include "core/context.h"
#include "core/cuda_check.h"

namespace ladder::cuda {

// Whether at least one CUDA device is usable. Never throws: false on any runtime error (no
// driver, a driver too old for this runtime, no device, CUDA_VISIBLE_DEVICES empty).
bool cuda_device_available();
// Why not: "" when a device is available, else the runtime's error (for skip messages, so
// that a GPU machine whose driver is too old does not pass for a machine without a GPU).
std::string cuda_device_problem();

// Thrown when cudaMalloc runs out of memory. what() reads like
//   "CUDA out of memory: asked for 2.00 GiB (2147483648 bytes); ladder holds 75.1 GiB
//    (...) in 212 buffers; the device has 1.2 GiB free of 79.2 GiB"
// The trainer catches it and rethrows with the rung and micro-batch added.
class DeviceOutOfMemory : public Error {
 public:
  DeviceOutOfMemory(const std::string& message, int64_t requested, int64_t in_use,
                    int64_t device_free, int64_t device_total)
      : Error(message),
        requested_(requested),
        in_use_(in_use),
        device_free_(device_free),
        device_total_(device_total) {}
  int64_t requested_bytes() const { return requested_; }
  int64_t in_use_bytes() const { return in_use_; }          // held by this allocator
  int64_t device_free_bytes() const { return device_free_; }  // cudaMemGetInfo (-1: unknown)
  int64_t device_total_bytes() const { return device_total_; }

 private:
  int64_t requested_, in_use_, device_free_, device_total_;
};

// Whether `error` says the device ran out of memory: a DeviceOutOfMemory from our allocator,
// or, at the edge of the device's memory, a failure of what allocates on its own (cuDNN's and
// cuBLAS's *_ALLOC_FAILED, cudaErrorMemoryAllocation at a launch that loads a kernel lazily).
bool is_allocation_failure(const Error& error);

// Counts what it hands out (thread-safe counters). Not copyable: buffers point to it.
class DeviceAllocator {
 public:
  DeviceAllocator() = default;
  ~DeviceAllocator() = default;
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  // cudaMalloc of `bytes` (> 0; 256-byte aligned); DeviceOutOfMemory when the device is full,
  // ladder::Error for any other CUDA failure.
  void* allocate(int64_t bytes);
  // cudaFree; never throws (a failure, e.g. at process teardown, is ignored).
  void release(void* pointer, int64_t bytes) noexcept;

  int64_t current_bytes() const { return counter_.current(); }
  int64_t peak_bytes() const { return counter_.peak(); }
  int64_t live_allocations() const { return live_.load(std::memory_order_relaxed); }
  // Starts a new peak window at the current level (e.g. per logged step).
  void reset_peak() { counter_.reset_peak(); }

 private:
  MemoryCounter counter_;
  std::atomic<int64_t> live_{0};
};

// A typed, move-only device array of `size()` elements. Contents are uninitialised unless
// zero() is called. The destructor never throws.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceAllocator& allocator, int64_t count) : allocator_(&allocator) {
    LADDER_CHECK(count >= 0, "DeviceBuffer: negative size ", count);
    if (count > 0) {
      data_ = static_cast<T*>(allocator.allocate(count * static_cast<int64_t>(sizeof(T))));
      size_ = count;
    }
  }
  ~DeviceBuffer() { reset(); }

  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      reset();
      swap(other);
    }
    return *this;
  }
  void swap(DeviceBuffer& other) noexcept {
    std::swap(allocator_, other.allocator_);
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
  }
  // Frees the memory now (the buffer becomes empty).
  void reset() noexcept {
    if (data_ != nullptr) allocator_->release(data_, bytes());
    data_ = nullptr;
    size_ = 0;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  int64_t size() const { return size_; }
  int64_t bytes() const { return size_ * static_cast<int64_t>(sizeof(T)); }
  bool empty() const { return size_ == 0; }

  // Stream-ordered copies and fill. `count` elements from the start of the buffer.
  void copy_from_host_async(const T* host, int64_t count, cudaStream_t stream) {
    check_count(count);
    if (count > 0)
      LADDER_CUDA_CHECK(cudaMemcpyAsync(data_, host, count * sizeof(T), cudaMemcpyHostToDevice,
                                        stream));
  }
  void copy_to_host_async(T* host, int64_t count, cudaStream_t stream) const {
    check_count(count);
    if (count > 0)
      LADDER_CUDA_CHECK(cudaMemcpyAsync(host, data_, count * sizeof(T), cudaMemcpyDeviceToHost,
                                        stream));
  }
  void zero_async(cudaStream_t stream) {
    if (size_ > 0) LADDER_CUDA_CHECK(cudaMemsetAsync(data_, 0, bytes(), stream));
  }
  // Synchronous versions, on the default stream: when they return, the data is at its
  // destination. They do NOT wait for work queued on other streams (CudaStream is
  // non-blocking): synchronise that stream first when it writes or reads this buffer.
  void copy_from_host(const T* host, int64_t count) {
    check_count(count);
    if (count > 0) {
      LADDER_CUDA_CHECK(cudaMemcpy(data_, host, count * sizeof(T), cudaMemcpyHostToDevice));
      // From pageable memory cudaMemcpy may return before the DMA lands: wait for it, so that
      // kernels on other streams see the data.
      LADDER_CUDA_CHECK(cudaStreamSynchronize(nullptr));
    }
  }
  void copy_to_host(T* host, int64_t count) const {
    check_count(count);
    if (count > 0)
      LADDER_CUDA_CHECK(cudaMemcpy(host, data_, count * sizeof(T), cudaMemcpyDeviceToHost));
  }

 private:
  void check_count(int64_t count) const {
    LADDER_CHECK(0 <= count && count <= size_, "DeviceBuffer: copy of ", count,
                 " elements into a buffer of ", size_);
  }

  DeviceAllocator* allocator_ = nullptr;
  T* data_ = nullptr;
  int64_t size_ = 0;
};

// Grows `buffer` to at least `count` elements and returns its data: the grow-only scratch
// pattern. Growing loses the contents and frees the old memory first (the peak holds one
// copy); the caller makes sure no queued work still uses it.
template <class T>
T* grow_to(DeviceBuffer<T>& buffer, DeviceAllocator& allocator, int64_t count) {
  if (buffer.size() < count) {
    buffer.reset();
    buffer = DeviceBuffer<T>(allocator, count);
  }
  return buffer.data();
}

// A non-blocking CUDA stream (does not synchronise with the legacy default stream).
class CudaStream {
 public:
  CudaStream();
  ~CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  CudaStream(CudaStream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}
  CudaStream& operator=(CudaStream&& other) noexcept;

  cudaStream_t get() const { return stream_; }
  operator cudaStream_t() const { return stream_; }  // NOLINT: pass where a stream is wanted
  void synchronize() const;
  // Work queued on this stream after this call waits until `event` has completed.
  void wait(cudaEvent_t event) const;

 private:
  cudaStream_t stream_ = nullptr;
};

// A CUDA event; without timing (cheaper) unless asked for.
class CudaEvent {
 public:
  explicit CudaEvent(bool timing = false);
  ~CudaEvent();
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  CudaEvent(CudaEvent&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
  CudaEvent& operator=(CudaEvent&& other) noexcept;

  cudaEvent_t get() const { return event_; }
  operator cudaEvent_t() const { return event_; }  // NOLINT
  void record(cudaStream_t stream) const;
  void synchronize() const;
  bool done() const;  // cudaEventQuery: true when complete
  // Milliseconds between two recorded timing events (`start` first).
  static float elapsed_ms(const CudaEvent& start, const CudaEvent& end);

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace ladder::cuda

#endif  // LADDER_WITH_CUDA
