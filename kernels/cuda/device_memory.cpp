// Why this file exists: the non-template half of device_memory.h: the counting allocator with
// its out-of-memory message, the device probe, and the stream and event wrappers.
#include "kernels/cuda/device_memory.h"

#include <cstdio>
#include <string>

#include "core/format.h"

namespace ladder::cuda {

bool cuda_device_available() {
  int count = 0;
  cudaError_t code = cudaGetDeviceCount(&count);
  if (code != cudaSuccess) {
    (void)cudaGetLastError();  // clear the (non-sticky) error so later checks do not see it
    return false;
  }
  return count > 0;
}

std::string cuda_device_problem() {
  int count = 0;
  cudaError_t code = cudaGetDeviceCount(&count);
  if (code != cudaSuccess) {
    (void)cudaGetLastError();
    return detail::concat(cudaGetErrorName(code), ": ", cudaGetErrorString(code));
  }
  return count > 0 ? std::string() : std::string("no CUDA device visible");
}

bool is_allocation_failure(const Error& error) {
  if (dynamic_cast<const DeviceOutOfMemory*>(&error) != nullptr) return true;
  const std::string what = error.what();
  return what.find("ALLOC_FAILED") != std::string::npos || what.find("MemoryAllocation") != std::string::npos;
}

void* DeviceAllocator::allocate(int64_t bytes) {
  LADDER_CHECK(bytes > 0, "DeviceAllocator: allocation of ", bytes, " bytes");
  void* pointer = nullptr;
  cudaError_t code = cudaMalloc(&pointer, static_cast<size_t>(bytes));
  if (code == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // out-of-memory is not sticky: clear it
    size_t free_bytes = 0, total_bytes = 0;
    int64_t device_free = -1, device_total = -1;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
      device_free = static_cast<int64_t>(free_bytes);
      device_total = static_cast<int64_t>(total_bytes);
    } else {
      (void)cudaGetLastError();
    }
    std::string message = detail::concat(
        "rank ", ProcessContext::get().rank(), ": CUDA out of memory: asked for ",
        human_bytes(bytes), " (", bytes, " bytes); ladder holds ", human_bytes(current_bytes()),
        " in ", live_allocations(), " buffers (peak ", human_bytes(peak_bytes()), "); the device has ",
        device_free < 0 ? std::string("unknown") : human_bytes(device_free), " free of ",
        device_total < 0 ? std::string("unknown") : human_bytes(device_total));
    throw DeviceOutOfMemory(message, bytes, current_bytes(), device_free, device_total);
  }
  if (code != cudaSuccess) {
    (void)cudaGetLastError();
    detail::throw_cuda_failure(code, detail::concat("cudaMalloc(", bytes, " bytes)").c_str(),
                               __FILE__, __LINE__);
  }
  counter_.add(bytes);
  live_.fetch_add(1, std::memory_order_relaxed);
  return pointer;
}

void DeviceAllocator::release(void* pointer, int64_t bytes) noexcept {
  if (pointer == nullptr) return;
  if (cudaFree(pointer) != cudaSuccess) {
    // Typically cudaErrorCudartUnloading at exit, or a sticky error reported elsewhere
    // already. Destructors never throw; clear it so it is not blamed on the next launch.
    (void)cudaGetLastError();
  }
  counter_.sub(bytes);
  live_.fetch_sub(1, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------

CudaStream::CudaStream() {
  LADDER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

CudaStream::~CudaStream() {
  if (stream_ != nullptr && cudaStreamDestroy(stream_) != cudaSuccess) (void)cudaGetLastError();
}

CudaStream& CudaStream::operator=(CudaStream&& other) noexcept {
  if (this != &other) {
    if (stream_ != nullptr && cudaStreamDestroy(stream_) != cudaSuccess) (void)cudaGetLastError();
    stream_ = std::exchange(other.stream_, nullptr);
  }
  return *this;
}

void CudaStream::synchronize() const { LADDER_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

void CudaStream::wait(cudaEvent_t event) const {
  LADDER_CUDA_CHECK(cudaStreamWaitEvent(stream_, event, 0));
}

CudaEvent::CudaEvent(bool timing) {
  LADDER_CUDA_CHECK(
      cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
}

CudaEvent::~CudaEvent() {
  if (event_ != nullptr && cudaEventDestroy(event_) != cudaSuccess) (void)cudaGetLastError();
}

CudaEvent& CudaEvent::operator=(CudaEvent&& other) noexcept {
  if (this != &other) {
    if (event_ != nullptr && cudaEventDestroy(event_) != cudaSuccess) (void)cudaGetLastError();
    event_ = std::exchange(other.event_, nullptr);
  }
  return *this;
}

void CudaEvent::record(cudaStream_t stream) const {
  LADDER_CUDA_CHECK(cudaEventRecord(event_, stream));
}

void CudaEvent::synchronize() const { LADDER_CUDA_CHECK(cudaEventSynchronize(event_)); }

bool CudaEvent::done() const {
  cudaError_t code = cudaEventQuery(event_);
  if (code == cudaErrorNotReady) {
    // A status, but the runtime also records it as the thread's last error: clear it, or the
    // next launch check (cudaGetLastError) would report it against an unrelated kernel.
    (void)cudaGetLastError();
    return false;
  }
  LADDER_CUDA_CHECK(code);
  return true;
}

float CudaEvent::elapsed_ms(const CudaEvent& start, const CudaEvent& end) {
  float ms = 0;
  LADDER_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, end.event_));
  return ms;
}

}  // namespace ladder::cuda
