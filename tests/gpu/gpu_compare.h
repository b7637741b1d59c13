// Why this file exists: the comparison helpers of the GPU tests (the pattern of
// test_cuda_ops.cpp) for the tests that came after it: host values rounded to the device type
// (so that the CPU reference sees exactly what the GPU sees), a device-side fixture
// (allocator, stream, upload, NaN-filled outputs, download), and the one comparison
//   max |got − want| / max |want| < bound (1e-4 fp32, 1e-2 bf16 and fp16), every got finite.
// Header-only; included by one test program each.
#pragma once

#include <gtest/gtest.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "core/bf16.h"
#include "core/cuda_check.h"
#include "core/rng.h"
#include "kernels/cuda/device_memory.h"
#include "kernels/cuda/ops.h"

namespace ladder::cuda::gpu_test {

using bf16_t = __nv_bfloat16;
using half_t = __half;
using Floats = std::vector<float>;

// ---- Device types on the host ------------------------------------------------------------
template <class T>
struct Dtype;
template <>
struct Dtype<float> {
  static constexpr double kBound = 1e-4;
  static constexpr const char* kName = "fp32";
};
template <>
struct Dtype<bf16_t> {
  static constexpr double kBound = 1e-2;
  static constexpr const char* kName = "bf16";
};
// fp16 has 3 more mantissa bits than bf16 but the same bound: the tests' values stay far
// inside its range (largest finite 65504), so only the rounding of the outputs counts.
template <>
struct Dtype<half_t> {
  static constexpr double kBound = 1e-2;
  static constexpr const char* kName = "fp16";
};

template <class T>
inline T to_device_type(float v) {
  if constexpr (std::is_same_v<T, bf16_t>) {
    __nv_bfloat16_raw raw;
    raw.x = bf16::round_to_bits(v);  // the engine's own rounding (nearest even)
    return bf16_t(raw);
  } else if constexpr (std::is_same_v<T, half_t>) {
    return __float2half_rn(v);  // host-callable; nearest even, as the device's cvt.rn.f16.f32
  } else {
    return v;
  }
}

inline float to_host_float(float v) { return v; }
inline float to_host_float(bf16_t v) {
  bf16 b;
  b.bits = static_cast<__nv_bfloat16_raw>(v).x;
  return static_cast<float>(b);
}
inline float to_host_float(half_t v) { return __half2float(v); }  // exact

// The values as T stores them: what the CPU reference must be given.
template <class T>
Floats representable(Floats values) {
  for (float& v : values) v = to_host_float(to_device_type<T>(v));
  return values;
}

inline Floats random_floats(size_t n, Rng& rng, double lo = -1.0, double hi = 1.0) {
  Floats v(n);
  for (float& x : v) x = static_cast<float>(rng.uniform(lo, hi));
  return v;
}

inline std::vector<double> to_doubles(const Floats& v) { return {v.begin(), v.end()}; }

// ---- The device side of a test: allocator, stream, transfers -----------------------------
struct Gpu {
  DeviceAllocator allocator;
  CudaStream stream;

  // `values` converted to T, in a buffer with `offset` spare elements in front (offset 1
  // makes the pointer unaligned and exercises the scalar paths). Returns the buffer; the data
  // starts at buffer.data() + offset.
  template <class T>
  DeviceBuffer<T> upload(const Floats& values, int offset = 0) {
    std::vector<T> host(values.size() + offset, to_device_type<T>(0.0f));
    for (size_t i = 0; i < values.size(); ++i) host[i + offset] = to_device_type<T>(values[i]);
    DeviceBuffer<T> buffer(allocator, int64_t(host.size()));
    buffer.copy_from_host_async(host.data(), int64_t(host.size()), stream);
    stream.synchronize();  // `host` goes out of scope
    return buffer;
  }
  // Every byte 0xFF: NaN in fp32, bf16 and fp16, so an output that is not written shows.
  template <class T>
  DeviceBuffer<T> garbage(size_t count, int offset = 0) {
    DeviceBuffer<T> buffer(allocator, int64_t(count) + offset);
    LADDER_CUDA_CHECK(cudaMemsetAsync(buffer.data(), 0xFF, buffer.bytes(), stream));
    return buffer;
  }
  // The elements [offset, offset + count) (all after offset when count < 0), as floats.
  template <class T>
  Floats download(const DeviceBuffer<T>& buffer, int offset = 0, int64_t count = -1) {
    stream.synchronize();
    std::vector<T> host(size_t(buffer.size()));
    buffer.copy_to_host(host.data(), buffer.size());
    if (count < 0) count = buffer.size() - offset;
    Floats out(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) out[size_t(i)] = to_host_float(host[size_t(offset + i)]);
    return out;
  }
  DeviceBuffer<double> reduction_scratch(int64_t n) {
    return DeviceBuffer<double>(allocator, reduction_scratch_doubles(n));
  }
};

// ---- The one comparison ------------------------------------------------------------------
// max |got − want| / max |want| < bound; every got finite. `what` names the op and case.
template <class A, class B>
void expect_close(const std::string& what, const std::vector<A>& got, const std::vector<B>& want,
                  double bound) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double max_diff = 0, max_want = 0;
  size_t worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    ASSERT_TRUE(std::isfinite(g)) << what << ": element " << i << " is " << g
                                  << " (reference " << w << ")";
    max_want = std::max(max_want, std::abs(w));
    const double diff = std::abs(g - w);
    if (diff > max_diff) {
      max_diff = diff;
      worst = i;
    }
  }
  const double error = max_want > 0 ? max_diff / max_want : max_diff;
  EXPECT_LT(error, bound) << what << ": relative error " << error << " (max |diff| " << max_diff
                          << " at element " << worst << ": got "
                          << (got.empty() ? 0.0 : double(got[worst])) << ", want "
                          << (want.empty() ? 0.0 : double(want[worst])) << "; max |want| "
                          << max_want << ")";
}

}  // namespace ladder::cuda::gpu_test
