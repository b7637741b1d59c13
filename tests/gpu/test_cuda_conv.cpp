// The cuDNN convolutions (kernels/cuda/conv2d.h) against the CPU reference
// (ladder::cpu::conv2d_*, run in double on the same inputs): forward, backward data and
// backward filter, fp32 (relative error < 1e-4; cuDNN runs without TF32), bf16 and fp16
// (< 1e-2, the CPU fed the same rounded values), for the shapes of the autoencoder: 3×3 stride 1 pad 1,
// 1×1, and the Downsample's 3×3 stride 2 with right/bottom-only padding, at odd and even sizes
// and odd channel counts. Also: outputs are written (prefilled NaN never leaks), parameter
// gradients accumulate (two calls give twice the gradient), plans are cached per shape, and a
// batch over cuDNN's 2^31-element limit is split correctly.
// Every test skips itself when no CUDA device is visible.
#include <gtest/gtest.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include "core/bf16.h"
#include "core/rng.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/cudnn_handle.h"
#include "kernels/cuda/device_memory.h"

namespace ladder::cuda {
namespace {

#define LADDER_REQUIRE_GPU()                                       \
  do {                                                             \
    int device_count_ = 0;                                         \
    if (cudaGetDeviceCount(&device_count_) != cudaSuccess ||       \
        device_count_ == 0) {                                      \
      (void)cudaGetLastError();                                    \
      GTEST_SKIP() << "no CUDA device";                            \
    }                                                              \
  } while (0)

using bf16_t = __nv_bfloat16;
using half_t = __half;

// ---- Host values of T: kept as floats that T represents exactly.
template <class T>
float round_to(float v) {
  if constexpr (std::is_same_v<T, bf16_t>) return float(bf16(v));
  if constexpr (std::is_same_v<T, half_t>) return __half2float(__float2half_rn(v));
  return v;
}

template <class T>
std::vector<float> random_values(size_t n, Rng& rng) {
  std::vector<float> v(n);
  for (float& x : v) x = round_to<T>(float(rng.uniform(-1.0, 1.0)));
  return v;
}

template <class T>
std::vector<T> to_storage(const std::vector<float>& v) {
  std::vector<T> out(v.size());
  if constexpr (std::is_same_v<T, bf16_t>) {
    for (size_t i = 0; i < v.size(); ++i) {
      __nv_bfloat16_raw raw;
      raw.x = bf16(v[i]).bits;  // ladder::bf16 rounds to nearest even, like the device
      out[i] = raw;
    }
  } else if constexpr (std::is_same_v<T, half_t>) {
    for (size_t i = 0; i < v.size(); ++i) out[i] = __float2half_rn(v[i]);  // nearest even
  } else {
    out = v;
  }
  return out;
}

template <class T>
std::vector<float> from_storage(const std::vector<T>& v) {
  std::vector<float> out(v.size());
  if constexpr (std::is_same_v<T, bf16_t>) {
    for (size_t i = 0; i < v.size(); ++i) {
      bf16 value;
      value.bits = __nv_bfloat16_raw(v[i]).x;
      out[i] = float(value);
    }
  } else if constexpr (std::is_same_v<T, half_t>) {
    for (size_t i = 0; i < v.size(); ++i) out[i] = __half2float(v[i]);
  } else {
    out = v;
  }
  return out;
}

template <class T>
DeviceBuffer<T> upload(DeviceAllocator& allocator, const std::vector<float>& values) {
  DeviceBuffer<T> buffer(allocator, int64_t(values.size()));
  buffer.copy_from_host(to_storage<T>(values).data(), int64_t(values.size()));
  return buffer;
}

// A buffer of `count` elements whose every byte is 0xFF: NaN in fp32, bf16 and fp16.
template <class T>
DeviceBuffer<T> garbage(DeviceAllocator& allocator, size_t count) {
  DeviceBuffer<T> buffer(allocator, int64_t(count));
  LADDER_CUDA_CHECK(cudaMemset(buffer.data(), 0xFF, buffer.bytes()));
  // cudaMemset runs on the legacy stream, unordered with the test's non-blocking stream.
  LADDER_CUDA_CHECK(cudaDeviceSynchronize());
  return buffer;
}

template <class T>
std::vector<float> download(const DeviceBuffer<T>& buffer) {
  LADDER_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<T> host(size_t(buffer.size()));
  buffer.copy_to_host(host.data(), buffer.size());
  return from_storage(host);
}

std::vector<double> to_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// ---- The one comparison: max |got − want| / max |want| below `bound`, and nothing
// non-finite in `got` (NaN would otherwise hide from the max).
void expect_close(const std::string& what, const std::vector<float>& got,
                  const std::vector<double>& want, double bound) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double err = 0, scale = 0;
  size_t worst = 0, non_finite = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) {
      ++non_finite;
      continue;
    }
    const double e = std::abs(double(got[i]) - want[i]);
    if (e > err) err = e, worst = i;
    scale = std::max(scale, std::abs(want[i]));
  }
  EXPECT_EQ(non_finite, 0u) << what << ": non-finite values";
  const double relative = err / std::max(scale, 1e-30);
  EXPECT_LT(relative, bound) << what << ": worst at [" << worst << "] got "
                             << (got.empty() ? 0.f : got[worst]) << " want "
                             << (want.empty() ? 0.0 : want[worst]);
}

std::vector<double> plus(const std::vector<double>& a, const std::vector<double>& b,
                         double times = 1) {
  std::vector<double> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = a[i] + times * b[i];
  return out;
}

// All three passes of one shape in dtype T against the double CPU reference.
template <class T>
void check_against_cpu(const Conv2dDims& d, double bound) {
  Rng rng(17, uint64_t(d.h) * 1000 + d.cin * 10 + d.stride);
  const auto x = random_values<T>(size_t(d.x_size()), rng), w = random_values<T>(size_t(d.w_size()), rng);
  const auto b = random_values<T>(d.cout, rng), dy = random_values<T>(size_t(d.y_size()), rng);
  const auto dw0 = random_values<T>(size_t(d.w_size()), rng), db0 = random_values<T>(d.cout, rng);

  // Reference, in double, on exactly the values the GPU gets.
  const auto xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
  std::vector<double> y_ref(size_t(d.y_size())), dx_ref(size_t(d.x_size())), gw(size_t(d.w_size()), 0.0), gb(d.cout, 0.0);
  cpu::conv2d_forward(d, xd.data(), wd.data(), bd.data(), y_ref.data());
  cpu::conv2d_backward_data(d, dyd.data(), wd.data(), dx_ref.data());
  cpu::conv2d_backward_filter(d, xd.data(), dyd.data(), gw.data(), gb.data());

  DeviceAllocator allocator;
  CudnnHandle handle;
  CudaStream stream;
  CudnnConv2d conv(handle, allocator);
  auto x_dev = upload<T>(allocator, x), w_dev = upload<T>(allocator, w);
  auto b_dev = upload<T>(allocator, b), dy_dev = upload<T>(allocator, dy);

  auto y_dev = garbage<T>(allocator, size_t(d.y_size()));
  conv.forward<T>(d, x_dev.data(), w_dev.data(), b_dev.data(), y_dev.data(), stream);
  expect_close("forward", download(y_dev), y_ref, bound);

  auto dx_dev = garbage<T>(allocator, size_t(d.x_size()));
  conv.backward_data<T>(d, dy_dev.data(), w_dev.data(), dx_dev.data(), stream);
  expect_close("backward_data", download(dx_dev), dx_ref, bound);

  // Accumulation onto nonzero gradients, once and twice.
  auto dw_dev = upload<T>(allocator, dw0), db_dev = upload<T>(allocator, db0);
  conv.backward_filter<T>(d, x_dev.data(), dy_dev.data(), dw_dev.data(), db_dev.data(), stream);
  expect_close("backward_filter dw (once)", download(dw_dev), plus(to_double(dw0), gw), bound);
  expect_close("backward_filter db (once)", download(db_dev), plus(to_double(db0), gb), bound);
  conv.backward_filter<T>(d, x_dev.data(), dy_dev.data(), dw_dev.data(), db_dev.data(), stream);
  expect_close("backward_filter dw (twice)", download(dw_dev), plus(to_double(dw0), gw, 2),
               bound);
  expect_close("backward_filter db (twice)", download(db_dev), plus(to_double(db0), gb, 2),
               bound);

  // From zero, two calls double the gradient; db may be null.
  auto dw_zero = upload<T>(allocator, std::vector<float>(size_t(d.w_size()), 0.f));
  conv.backward_filter<T>(d, x_dev.data(), dy_dev.data(), dw_zero.data(), nullptr, stream);
  conv.backward_filter<T>(d, x_dev.data(), dy_dev.data(), dw_zero.data(), nullptr, stream);
  const std::vector<double> zero(size_t(d.w_size()), 0.0);
  expect_close("backward_filter dw (2 calls from zero)", download(dw_zero), plus(zero, gw, 2),
               bound);

  // One shape, one dtype: one plan, reused by every pass and call.
  EXPECT_EQ(conv.cached_plans(), 1);
}

// ---- The shapes.
struct Case {
  const char* name;
  Conv2dDims dims;
};

const Case kCases[] = {
    {"k3s1p1_h16_20to12", Conv2dDims::make(3, 16, 16, 20, 12, 3, 1, 1, 1, 1, 1)},
    {"k3s1p1_h9_3to16", Conv2dDims::make(3, 9, 9, 3, 16, 3, 1, 1, 1, 1, 1)},
    {"k1s1p0_h16_3to16", Conv2dDims::make(3, 16, 16, 3, 16, 1, 1, 0, 0, 0, 0)},
    {"k1s1p0_h9_20to12", Conv2dDims::make(3, 9, 9, 20, 12, 1, 1, 0, 0, 0, 0)},
    {"downsample_h16_20to12", Conv2dDims::make(3, 16, 16, 20, 12, 3, 2, 0, 0, 1, 1)},
    {"downsample_h9_3to16", Conv2dDims::make(3, 9, 9, 3, 16, 3, 2, 0, 0, 1, 1)},
    {"downsample_h16_16to16", Conv2dDims::make(3, 16, 16, 16, 16, 3, 2, 0, 0, 1, 1)},
    // Not rectangular, a padding only on top/left: the embedding the other way round.
    {"asym_top_left_h9w16_3to16", Conv2dDims::make(3, 9, 16, 3, 16, 3, 1, 2, 1, 0, 1)},
    // InceptionV3's rectangular kernels ('same' padding) and its unpadded stride-2 stem.
    {"k1x7_same_h17_20to12", Conv2dDims::make_rectangular(2, 17, 17, 20, 12, 1, 7, 1, 0, 3, 0, 3)},
    {"k7x1_same_h17_12to20", Conv2dDims::make_rectangular(2, 17, 17, 12, 20, 7, 1, 1, 3, 0, 3, 0)},
    {"k3s2p0_h17_8to16", Conv2dDims::make(2, 17, 17, 8, 16, 3, 2, 0, 0, 0, 0)},
};

// Names the case in test listings (instead of its bytes).
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class CudaConv : public ::testing::TestWithParam<Case> {};

TEST_P(CudaConv, Fp32MatchesCpu) {
  LADDER_REQUIRE_GPU();
  check_against_cpu<float>(GetParam().dims, 1e-4);
}

TEST_P(CudaConv, Bf16MatchesCpu) {
  LADDER_REQUIRE_GPU();
  check_against_cpu<bf16_t>(GetParam().dims, 1e-2);
}

TEST_P(CudaConv, Fp16MatchesCpu) {
  LADDER_REQUIRE_GPU();
  check_against_cpu<half_t>(GetParam().dims, 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaConv, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.name);
                         });

TEST(CudaConvPlans, CachedPerShapeAndDtype) {
  LADDER_REQUIRE_GPU();
  DeviceAllocator allocator;
  CudnnHandle handle;
  CudaStream stream;
  CudnnConv2d conv(handle, allocator);
  const Conv2dDims a = Conv2dDims::make(2, 8, 8, 4, 8, 3, 1, 1, 1, 1, 1);
  const Conv2dDims b = Conv2dDims::make(2, 8, 8, 4, 8, 3, 2, 0, 0, 1, 1);
  auto x = garbage<float>(allocator, size_t(a.x_size()));
  LADDER_CUDA_CHECK(cudaMemset(x.data(), 0, x.bytes()));
  LADDER_CUDA_CHECK(cudaDeviceSynchronize());
  auto w = upload<float>(allocator, std::vector<float>(size_t(a.w_size()), 0.5f));
  auto y = garbage<float>(allocator, size_t(a.y_size()));
  auto xb = upload<bf16_t>(allocator, std::vector<float>(size_t(a.x_size()), 0.f));
  auto wb = upload<bf16_t>(allocator, std::vector<float>(size_t(a.w_size()), 0.5f));
  auto yb = garbage<bf16_t>(allocator, size_t(a.y_size()));
  auto xh = upload<half_t>(allocator, std::vector<float>(size_t(a.x_size()), 0.f));
  auto wh = upload<half_t>(allocator, std::vector<float>(size_t(a.w_size()), 0.5f));
  auto yh = garbage<half_t>(allocator, size_t(a.y_size()));
  conv.forward<float>(a, x.data(), w.data(), nullptr, y.data(), stream);
  conv.forward<float>(a, x.data(), w.data(), nullptr, y.data(), stream);
  EXPECT_EQ(conv.cached_plans(), 1);
  conv.forward<float>(b, x.data(), w.data(), nullptr, y.data(), stream);
  EXPECT_EQ(conv.cached_plans(), 2);
  conv.forward<bf16_t>(a, xb.data(), wb.data(), nullptr, yb.data(), stream);
  EXPECT_EQ(conv.cached_plans(), 3);
  conv.forward<half_t>(a, xh.data(), wh.data(), nullptr, yh.data(), stream);
  EXPECT_EQ(conv.cached_plans(), 4);  // same shape, third dtype
  stream.synchronize();
  for (float v : download(y)) ASSERT_EQ(v, 0.f);  // zero input, no bias: exactly zero
}

// A batch whose activations exceed 2^31 elements runs as several cuDNN calls; every image
// must match the same image computed alone (1×1 conv, 8 channels, 10000² pixels per image:
// 3 images = 2.4e9 elements, split 2 + 1). Needs ~30 GB of device memory.
TEST(CudaConvPlans, LargeBatchIsSplitAtTheDescriptorLimit) {
  LADDER_REQUIRE_GPU();
  size_t free_bytes = 0, total_bytes = 0;
  LADDER_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (free_bytes < (size_t(36) << 30)) GTEST_SKIP() << "needs 36 GB of free device memory";
  const Conv2dDims d = Conv2dDims::make(3, 10000, 10000, 8, 8, 1, 1, 0, 0, 0, 0);
  Conv2dDims one = d;
  one.n = 1;
  const size_t image = size_t(one.x_size());  // = size_t(one.y_size())

  DeviceAllocator allocator;
  CudnnHandle handle;
  CudaStream stream;
  CudnnConv2d conv(handle, allocator);
  // x: a random block of a length coprime with the image size, replicated by doubling copies.
  Rng rng(5, 6);
  const auto pattern = random_values<float>(999983, rng);
  auto x = DeviceBuffer<float>(allocator, int64_t(size_t(d.x_size())));
  x.copy_from_host(pattern.data(), int64_t(pattern.size()));
  for (size_t filled = pattern.size(); filled < size_t(d.x_size()); filled *= 2) {
    const size_t count = std::min(filled, size_t(d.x_size()) - filled);
    LADDER_CUDA_CHECK(cudaMemcpy(x.data() + filled, x.data(), count * sizeof(float),
                                 cudaMemcpyDeviceToDevice));
  }
  auto w = upload<float>(allocator, random_values<float>(size_t(d.w_size()), rng));
  auto y = garbage<float>(allocator, size_t(d.y_size()));
  auto y_one = garbage<float>(allocator, image);
  conv.forward<float>(d, x.data(), w.data(), nullptr, y.data(), stream);
  EXPECT_EQ(conv.cached_plans(), 2);  // chunks of 2 images and of 1
  // Check the first image of each chunk (0 and 2) against that image alone.
  for (int n : {0, 2}) {
    conv.forward<float>(one, x.data() + n * image, w.data(), nullptr, y_one.data(), stream);
    stream.synchronize();
    std::vector<float> alone(image), batched(image);
    y_one.copy_to_host(alone.data(), int64_t(image));
    LADDER_CUDA_CHECK(cudaMemcpy(batched.data(), y.data() + n * image, image * sizeof(float),
                                 cudaMemcpyDeviceToHost));
    expect_close("image " + std::to_string(n), batched, to_double(alone), 1e-6);
  }
  // Backward filter over the split batch = the sum of the three images' gradients (db does
  // not depend on the split: one reduction over all pixels).
  auto dw = upload<float>(allocator, std::vector<float>(size_t(d.w_size()), 0.f));
  auto dw_sum = upload<float>(allocator, std::vector<float>(size_t(d.w_size()), 0.f));
  const float* dy = x.data();  // any values of the right size (cin = cout)
  conv.backward_filter<float>(d, x.data(), dy, dw.data(), nullptr, stream);
  for (int n = 0; n < d.n; ++n)
    conv.backward_filter<float>(one, x.data() + n * image, dy + n * image, dw_sum.data(),
                                nullptr, stream);
  expect_close("split dw", download(dw), to_double(download(dw_sum)), 1e-4);
}

}  // namespace
}  // namespace ladder::cuda
