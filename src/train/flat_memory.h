// Why this file exists: the ZeRO traffic (train/gradient_sync.h) and the optimizer step work on
// flat fp32 buffers — the parameter values, the gradients, the rank's gradient shard — that
// live in host memory on CPU ranks and in device memory on GPU ranks. FlatMemory is where
// they live and the few vector operations GradientSync needs on them; HostFlatMemory is the
// CPU's (over the ParamStore), DeviceFlatMemory (train/device_flat_memory.h) the GPU's.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>

#include "core/params.h"

namespace ladder {

// A move-only fp32 array in some FlatMemory (zeroed when made); frees itself.
class FloatArray {
 public:
  FloatArray() = default;
  FloatArray(float* data, int64_t size, std::function<void()> release)
      : data_(data), size_(size), release_(std::move(release)) {}
  ~FloatArray() {
    if (release_) release_();
  }
  FloatArray(FloatArray&& other) noexcept { swap(other); }
  FloatArray& operator=(FloatArray&& other) noexcept {
    FloatArray gone(std::move(other));
    swap(gone);
    return *this;
  }
  FloatArray(const FloatArray&) = delete;
  FloatArray& operator=(const FloatArray&) = delete;

  float* data() { return data_; }
  const float* data() const { return data_; }
  int64_t size() const { return size_; }
  int64_t bytes() const { return size_ * static_cast<int64_t>(sizeof(float)); }

 private:
  void swap(FloatArray& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(release_, other.release_);
  }
  float* data_ = nullptr;
  int64_t size_ = 0;
  std::function<void()> release_;
};

class FlatMemory {
 public:
  virtual ~FlatMemory() = default;

  virtual bool on_device() const = 0;
  virtual float* values() = 0;  // (padded) fp32 parameters
  virtual float* grads() = 0;   // (padded) fp32 gradients
  virtual FloatArray allocate(int64_t count) = 0;  // zeroed
  virtual void zero(float* data, int64_t count) = 0;
  virtual void add(const float* x, float* y, int64_t count) = 0;  // y += x
  virtual void scale(float* data, int64_t count, float factor) = 0;
  // Σ data² in double, in a fixed order (deterministic); waits for queued work.
  virtual double squared_norm(const float* data, int64_t count) = 0;
  // Returns when the work queued on these buffers is done (before a collective reads them).
  virtual void synchronize() = 0;
  // The stream the work on these buffers is queued on (a cudaStream_t), for collectives
  // ordered after it; null for host memory.
  virtual void* stream() { return nullptr; }
  // host (count) ← data (count), after the work queued so far (checkpoints stage through it).
  virtual void download(const float* data, float* host, int64_t count) = 0;
  // data (count) ← host (count); returns when the host buffer has been read (resume).
  virtual void upload(const float* host, float* data, int64_t count) = 0;
  virtual void lerp(const float* x, float* y, int64_t count, float t) = 0;  // y += t·(x − y)
};

class HostFlatMemory final : public FlatMemory {
 public:
  explicit HostFlatMemory(ParamStore& store) : store_(store) {}

  bool on_device() const override { return false; }
  float* values() override { return store_.values(); }
  float* grads() override { return store_.grads(); }
  FloatArray allocate(int64_t count) override;
  void zero(float* data, int64_t count) override;
  void add(const float* x, float* y, int64_t count) override;
  void scale(float* data, int64_t count, float factor) override;
  double squared_norm(const float* data, int64_t count) override;
  void synchronize() override {}
  void download(const float* data, float* host, int64_t count) override;
  void upload(const float* host, float* data, int64_t count) override;
  void lerp(const float* x, float* y, int64_t count, float t) override;

 private:
  ParamStore& store_;
};

}  // namespace ladder
