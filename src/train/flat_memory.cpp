// Why this file exists: the host implementation of FlatMemory (CPU ranks).
#include "train/flat_memory.h"

#include <cstring>

#include "core/host_buffer.h"
#include "kernels/cpu/ops.h"
#include "train/adamw.h"

namespace ladder {

FloatArray HostFlatMemory::allocate(int64_t count) {
  auto* buffer = new HostBuffer<float>(count);  // zeroed, counted in the host peak
  return FloatArray(buffer->data(), count, [buffer] { delete buffer; });
}

void HostFlatMemory::download(const float* data, float* host, int64_t count) {
  cpu::copy(count, data, host);
}

void HostFlatMemory::upload(const float* host, float* data, int64_t count) {
  cpu::copy(count, host, data);
}

void HostFlatMemory::lerp(const float* x, float* y, int64_t count, float t) {
  cpu::lerp_inplace(count, x, t, y);
}

void HostFlatMemory::zero(float* data, int64_t count) {
  if (count > 0) std::memset(data, 0, static_cast<size_t>(count) * sizeof(float));
}

void HostFlatMemory::add(const float* x, float* y, int64_t count) {
  cpu::add_accumulate(count, x, y);
}

void HostFlatMemory::scale(float* data, int64_t count, float factor) {
  scale_values(data, count, factor);
}

double HostFlatMemory::squared_norm(const float* data, int64_t count) {
  return ladder::squared_norm(data, count);
}

}  // namespace ladder
