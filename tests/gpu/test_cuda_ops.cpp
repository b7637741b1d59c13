// Why this file exists: every op of kernels/cuda/ops.h against the CPU reference
// (kernels/cpu/ops.h), in the style of ggml's test-backend-ops: random inputs from a fixed
// seed, rounded to the device type first so that the CPU (in fp32) sees exactly the values
// the GPU sees, then one comparison for every output:
//   max |gpu − cpu| / max |cpu| < 1e-4 (fp32) or 1e-2 (bf16, fp16), and no NaN/Inf from the GPU.
// Conventions are checked too: outputs and activation gradients are written (their buffers
// start as NaN), parameter gradients and `_accumulate` outputs add (a second call adds again),
// reductions are deterministic (a second call gives the same bits).
// Every test skips itself when no CUDA device is visible (CTest label `gpu`).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "core/bf16.h"
#include "core/cuda_check.h"
#include "core/params.h"
#include "core/rng.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/device_memory.h"
#include "kernels/cuda/ops.h"
#include "tests/gpu/gpu_compare.h"
#include "train/adamw.h"
#include "train/shard_layout.h"

namespace ladder::cuda {
namespace {

using namespace gpu_test;
using gpu_test::expect_close;  // the vector overload, beside the scalar one below

Floats plus(const Floats& a, const Floats& b, float times = 1.0f) {
  Floats out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = a[i] + times * b[i];
  return out;
}

void expect_close(const std::string& what, double got, double want, double bound) {
  expect_close(what, std::vector<double>{got}, std::vector<double>{want}, bound);
}

// got == want element for element (no NaN expected); reports the count and the first
// difference instead of printing whole vectors.
void expect_identical(const std::string& what, const Floats& got, const Floats& want) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t differ = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(got[i] == want[i]) && differ++ == 0) first = i;
  EXPECT_EQ(differ, 0u) << what << ": " << differ << " elements differ, first [" << first
                        << "]: got " << (differ ? got[first] : 0.0f) << ", want "
                        << (differ ? want[first] : 0.0f);
}

template <class T>
std::string case_name(const std::string& op, int64_t n, int offset) {
  return op + " " + Dtype<T>::kName + " n=" + std::to_string(n) +
         " offset=" + std::to_string(offset);
}

template <class T>
class CudaOps : public ::testing::Test {};
using DeviceTypes = ::testing::Types<float, bf16_t, half_t>;
TYPED_TEST_SUITE(CudaOps, DeviceTypes);

// Sizes for the elementwise ops: odd counts, and offset 1 for unaligned (scalar) paths.
struct ElementwiseCase {
  int64_t n;
  int offset;
};
const ElementwiseCase kElementwiseCases[] = {{1, 0}, {975, 0}, {975, 1}, {4099, 0}, {70001, 1}};

// ---- Elementwise -------------------------------------------------------------------------
TYPED_TEST(CudaOps, Elementwise) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda_device_problem();
  using T = TypeParam;
  const double bound = Dtype<T>::kBound;
  Gpu gpu;
  Rng rng(11, 0);
  for (const ElementwiseCase& c : kElementwiseCases) {
    const size_t n = size_t(c.n);
    const int o = c.offset;
    const Floats a = representable<T>(random_floats(n, rng, -6, 6));
    const Floats b = representable<T>(random_floats(n, rng, -2, 2));
    auto a_dev = gpu.upload<T>(a, o), b_dev = gpu.upload<T>(b, o);

    {  // silu forward and backward
      Floats y(n), dx(n);
      cpu::silu_forward<float>(c.n, a.data(), y.data());
      cpu::silu_backward<float>(c.n, a.data(), b.data(), dx.data());
      auto y_dev = gpu.garbage<T>(n, o), dx_dev = gpu.garbage<T>(n, o);
      silu_forward<T>(c.n, a_dev.data() + o, y_dev.data() + o, gpu.stream);
      silu_backward<T>(c.n, a_dev.data() + o, b_dev.data() + o, dx_dev.data() + o, gpu.stream);
      expect_close(case_name<T>("silu_forward", c.n, o), gpu.download(y_dev, o), y, bound);
      expect_close(case_name<T>("silu_backward", c.n, o), gpu.download(dx_dev, o), dx, bound);
    }
    {  // add, add_accumulate (twice), scale_inplace
      Floats y(n);
      cpu::add_forward<float>(c.n, a.data(), b.data(), y.data());
      auto y_dev = gpu.garbage<T>(n, o);
      add_forward<T>(c.n, a_dev.data() + o, b_dev.data() + o, y_dev.data() + o, gpu.stream);
      expect_close(case_name<T>("add_forward", c.n, o), gpu.download(y_dev, o), y, bound);

      auto acc_dev = gpu.upload<T>(b, o);
      add_accumulate<T>(c.n, a_dev.data() + o, acc_dev.data() + o, gpu.stream);
      expect_close(case_name<T>("add_accumulate once", c.n, o), gpu.download(acc_dev, o),
                   plus(b, a), bound);
      add_accumulate<T>(c.n, a_dev.data() + o, acc_dev.data() + o, gpu.stream);
      expect_close(case_name<T>("add_accumulate twice", c.n, o), gpu.download(acc_dev, o),
                   plus(b, a, 2.0f), bound);

      Floats scaled = a;
      cpu::scale_inplace<float>(c.n, -0.37f, scaled.data());
      auto s_dev = gpu.upload<T>(a, o);
      scale_inplace<T>(c.n, -0.37f, s_dev.data() + o, gpu.stream);
      expect_close(case_name<T>("scale_inplace", c.n, o), gpu.download(s_dev, o), scaled, bound);
    }
    {  // convert: T → float and T → T are exact; float → T rounds like the host (nearest even)
      auto f_dev = gpu.garbage<float>(n, o);
      convert<T, float>(c.n, a_dev.data() + o, f_dev.data() + o, gpu.stream);
      expect_close(case_name<T>("convert to fp32", c.n, o), gpu.download(f_dev, o), a, 1e-30);
      auto same_dev = gpu.garbage<T>(n, o);
      convert<T, T>(c.n, a_dev.data() + o, same_dev.data() + o, gpu.stream);
      expect_close(case_name<T>("convert to itself", c.n, o), gpu.download(same_dev, o), a,
                   1e-30);
      const Floats wide = random_floats(n, rng, -3, 3);
      auto w_dev = gpu.upload<float>(wide, o);
      auto t_dev = gpu.garbage<T>(n, o);
      convert<float, T>(c.n, w_dev.data() + o, t_dev.data() + o, gpu.stream);
      expect_close(case_name<T>("convert from fp32", c.n, o), gpu.download(t_dev, o),
                   representable<T>(wide), 1e-30);
    }
  }
}

// ---- GroupNorm (+ SiLU) ------------------------------------------------------------------
struct GroupNormCase {
  int n, hw, c, groups;
};
// Odd shapes: 25 pixels, N = 3, channels not multiples of 8, groups of 3..520 channels
// (520 > the 512 threads of a block: two column passes), and a larger image.
const GroupNormCase kGroupNormCases[] = {
    {3, 25, 36, 4}, {3, 25, 96, 32}, {3, 25, 28, 4}, {3, 25, 6, 2},
    {2, 1089, 64, 32}, {1, 7, 2080, 4}, {2, 300, 128, 32}};

TYPED_TEST(CudaOps, GroupNorm) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda_device_problem();
  using T = TypeParam;
  const double bound = Dtype<T>::kBound;
  Gpu gpu;
  Rng rng(12, 0);
  for (const GroupNormCase& c : kGroupNormCases) {
    for (bool silu : {false, true}) {
      cpu::GroupNormDims d;
      d.n = c.n, d.hw = c.hw, d.c = c.c, d.groups = c.groups, d.eps = 1e-6;
      const std::string name = std::string(Dtype<T>::kName) + " N=" + std::to_string(c.n) + " HW=" + std::to_string(c.hw) +
                               " C=" + std::to_string(c.c) + " G=" + std::to_string(c.groups) +
                               (silu ? " +silu" : "");
      const size_t size = size_t(c.n) * c.hw * c.c, stats = size_t(c.n) * c.groups;
      // An offset mean (+3) checks that the statistics do not lose the variance.
      const Floats x = representable<T>(random_floats(size, rng, 1.0, 5.0));
      const Floats dy = representable<T>(random_floats(size, rng));
      const Floats gamma = random_floats(size_t(c.c), rng, 0.5, 1.5);
      const Floats beta = random_floats(size_t(c.c), rng, -0.5, 0.5);
      const Floats dgamma0 = random_floats(size_t(c.c), rng), dbeta0 = random_floats(size_t(c.c), rng);

      // CPU reference: group norm, then SiLU as a separate op.
      Floats u(size), y(size), mean(stats), rstd(stats), du(size), dx(size);
      Floats dgamma(size_t(c.c), 0.0f), dbeta(size_t(c.c), 0.0f);
      cpu::group_norm_forward<float>(d, x.data(), gamma.data(), beta.data(), u.data(),
                                     mean.data(), rstd.data());
      if (silu) {
        cpu::silu_forward<float>(int64_t(size), u.data(), y.data());
        cpu::silu_backward<float>(int64_t(size), u.data(), dy.data(), du.data());
      } else {
        y = u;
        du = dy;
      }
      cpu::group_norm_backward<float>(d, x.data(), gamma.data(), mean.data(), rstd.data(),
                                      du.data(), dx.data(), dgamma.data(), dbeta.data());

      auto x_dev = gpu.upload<T>(x), dy_dev = gpu.upload<T>(dy);
      auto gamma_dev = gpu.upload<float>(gamma), beta_dev = gpu.upload<float>(beta);
      auto y_dev = gpu.garbage<T>(size), dx_dev = gpu.garbage<T>(size);
      auto mean_dev = gpu.garbage<float>(stats), rstd_dev = gpu.garbage<float>(stats);
      auto dgamma_dev = gpu.upload<float>(dgamma0), dbeta_dev = gpu.upload<float>(dbeta0);
      auto scratch = gpu.garbage<float>(size_t(group_norm_backward_scratch_floats(d)));

      group_norm_forward<T>(d, silu, x_dev.data(), gamma_dev.data(), beta_dev.data(),
                            y_dev.data(), mean_dev.data(), rstd_dev.data(), gpu.stream);
      expect_close(name + " forward y", gpu.download(y_dev), y, bound);
      // The statistics are fp32 from the same inputs whatever T is.
      expect_close(name + " forward mean", gpu.download(mean_dev), mean, Dtype<float>::kBound);
      expect_close(name + " forward rstd", gpu.download(rstd_dev), rstd, Dtype<float>::kBound);

      group_norm_backward<T>(d, silu, x_dev.data(), gamma_dev.data(), beta_dev.data(),
                             mean_dev.data(), rstd_dev.data(), dy_dev.data(), dx_dev.data(),
                             dgamma_dev.data(), dbeta_dev.data(), scratch.data(), gpu.stream);
      const Floats dx_first = gpu.download(dx_dev);
      expect_close(name + " backward dx", dx_first, dx, bound);
      expect_close(name + " backward dgamma (once)", gpu.download(dgamma_dev),
                   plus(dgamma0, dgamma), bound);
      expect_close(name + " backward dbeta (once)", gpu.download(dbeta_dev), plus(dbeta0, dbeta),
                   bound);

      // Second call: dx written again (same bits: deterministic), parameter grads add again.
      group_norm_backward<T>(d, silu, x_dev.data(), gamma_dev.data(), beta_dev.data(),
                             mean_dev.data(), rstd_dev.data(), dy_dev.data(), dx_dev.data(),
                             dgamma_dev.data(), dbeta_dev.data(), scratch.data(), gpu.stream);
      const Floats dx_second = gpu.download(dx_dev);
      EXPECT_EQ(0, std::memcmp(dx_first.data(), dx_second.data(), dx_first.size() * sizeof(float)))
          << name << ": backward dx differs between two identical calls";
      expect_close(name + " backward dgamma (twice)", gpu.download(dgamma_dev),
                   plus(dgamma0, dgamma, 2.0f), bound);
      expect_close(name + " backward dbeta (twice)", gpu.download(dbeta_dev),
                   plus(dbeta0, dbeta, 2.0f), bound);
    }
  }
}

// ---- Adding a 16-bit (or fp32) gradient into an fp32 buffer ------------------------------
// y += float(x) is one fp32 addition per element on both sides, so the GPU must match the
// host bit for bit. Aligned and unaligned x and y (vector and scalar paths), twice.
TYPED_TEST(CudaOps, AccumulateToF32) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda_device_problem();
  using T = TypeParam;
  Gpu gpu;
  Rng rng(18, 0);
  for (const ElementwiseCase& c : kElementwiseCases) {
    for (int oy : {0, 1}) {
      const size_t n = size_t(c.n);
      const int ox = c.offset;
      const std::string name = case_name<T>("accumulate_to_f32", c.n, ox) +
                               " y offset=" + std::to_string(oy);
      const Floats x = representable<T>(random_floats(n, rng, -3, 3));
      const Floats y0 = random_floats(n, rng);  // full fp32 values
      Floats once(n), twice(n);
      for (size_t i = 0; i < n; ++i) {
        once[i] = y0[i] + x[i];
        twice[i] = once[i] + x[i];
      }
      auto x_dev = gpu.upload<T>(x, ox);
      auto y_dev = gpu.upload<float>(y0, oy);
      accumulate_to_f32<T>(c.n, x_dev.data() + ox, y_dev.data() + oy, gpu.stream);
      expect_identical(name + " (once)", gpu.download(y_dev, oy), once);
      accumulate_to_f32<T>(c.n, x_dev.data() + ox, y_dev.data() + oy, gpu.stream);
      expect_identical(name + " (twice)", gpu.download(y_dev, oy), twice);
      // The element in front of y (offset 1) is not touched.
      if (oy == 1) {
        EXPECT_EQ(gpu.download(y_dev, 0, 1)[0], 0.0f) << name;
      }
    }
  }
}

// fp16's range ends: float → fp16 rounds to nearest even up to 65504 and overflows to ±Inf
// beyond (65520 is the halfway point to 2^16); tiny values go subnormal or to zero. The GPU
// must agree with the host conversion bit for bit; Inf is what loss scaling detects.
TEST(CudaOpsFp16, ConvertRangeEnds) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda_device_problem();
  Gpu gpu;
  const Floats values = {65504.0f, 65519.0f, 65520.0f, 1e6f,  -1e6f, -65504.0f,
                         6.0e-8f,  3.0e-8f,  1e-9f,    6.1e-5f, 0.0f, -0.0f};
  auto in_dev = gpu.upload<float>(values);
  auto out_dev = gpu.garbage<half_t>(values.size());
  convert<float, half_t>(int64_t(values.size()), in_dev.data(), out_dev.data(), gpu.stream);
  const Floats got = gpu.download(out_dev);
  const Floats want = representable<half_t>(values);
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(got[i], want[i]) << "convert<float, fp16>(" << values[i] << ")";
    EXPECT_EQ(std::signbit(got[i]), std::signbit(want[i])) << values[i];
  }
  EXPECT_TRUE(std::isinf(want[2]) && std::isinf(want[3]) && std::isinf(want[4]))
      << "host rounding of the overflow cases";
}

// ---- Nearest ×2 upsampling ---------------------------------------------------------------
TYPED_TEST(CudaOps, Upsample) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda_device_problem();
  using T = TypeParam;
  const double bound = Dtype<T>::kBound;
  Gpu gpu;
  Rng rng(13, 0);
  struct Shape {
    int n, h, w, c;
  };
  for (const Shape s : {Shape{3, 5, 5, 13}, Shape{2, 4, 3, 16}, Shape{1, 1, 1, 1},
                        Shape{3, 8, 6, 24}}) {
    const std::string name = std::string(Dtype<T>::kName) + " " + std::to_string(s.n) + "x" + std::to_string(s.h) + "x" +
                             std::to_string(s.w) + "x" + std::to_string(s.c);
    const size_t small = size_t(s.n) * s.h * s.w * s.c, big = 4 * small;
    const Floats x = representable<T>(random_floats(small, rng));
    const Floats dy = representable<T>(random_floats(big, rng));
    Floats y(big), dx(small);
    cpu::upsample_nearest2x_forward<float>(s.n, s.h, s.w, s.c, x.data(), y.data());
    cpu::upsample_nearest2x_backward<float>(s.n, s.h, s.w, s.c, dy.data(), dx.data());

    auto x_dev = gpu.upload<T>(x), dy_dev = gpu.upload<T>(dy);
    auto y_dev = gpu.garbage<T>(big), dx_dev = gpu.garbage<T>(small);
    upsample_nearest2x_forward<T>(s.n, s.h, s.w, s.c, x_dev.data(), y_dev.data(), gpu.stream);
    upsample_nearest2x_backward<T>(s.n, s.h, s.w, s.c, dy_dev.data(), dx_dev.data(), gpu.stream);
    expect_close(name + " upsample forward", gpu.download(y_dev), y, bound);
    expect_close(name + " upsample backward", gpu.download(dx_dev), dx, bound);
  }
}

// The UNet's channel plumbing: skip concatenation and its split, the per-image channel
// vector broadcast over the pixels and its sum (kernels/cuda/channels.cu).
TYPED_TEST(CudaOps, UNetChannels) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda_device_problem();
  using T = TypeParam;
  const double bound = Dtype<T>::kBound;
  Gpu gpu;
  Rng rng(17, 0);
  for (const int64_t m : {int64_t{1}, int64_t{37}, int64_t{64 * 64}}) {
    const int ca = 24, cb = 13, n = 1 + static_cast<int>(m % 3);
    const int64_t hw = m;
    const std::string name = std::string(Dtype<T>::kName) + " m=" + std::to_string(m);
    const Floats a = representable<T>(random_floats(size_t(m * ca), rng));
    const Floats b = representable<T>(random_floats(size_t(m * cb), rng));
    const Floats dy = representable<T>(random_floats(size_t(m * (ca + cb)), rng));
    Floats y(dy.size()), da(a.size()), db(b.size());
    cpu::concat_channels<float>(m, ca, cb, a.data(), b.data(), y.data());
    cpu::split_channels<float>(m, ca, cb, dy.data(), da.data(), db.data());
    auto a_dev = gpu.upload<T>(a), b_dev = gpu.upload<T>(b), dy_dev = gpu.upload<T>(dy);
    auto y_dev = gpu.garbage<T>(y.size()), da_dev = gpu.garbage<T>(da.size()), db_dev = gpu.garbage<T>(db.size());
    concat_channels<T>(m, ca, cb, a_dev.data(), b_dev.data(), y_dev.data(), gpu.stream);
    split_channels<T>(m, ca, cb, dy_dev.data(), da_dev.data(), db_dev.data(), gpu.stream);
    expect_close(name + " concat", gpu.download(y_dev), y, 0.0);
    expect_close(name + " split a", gpu.download(da_dev), da, 0.0);
    expect_close(name + " split b", gpu.download(db_dev), db, 0.0);

    const Floats x = representable<T>(random_floats(size_t(n * hw * ca), rng));
    const Floats v = representable<T>(random_floats(size_t(n * ca), rng));
    Floats out(x.size()), dv(v.size());
    cpu::add_per_channel<float>(n, hw, ca, x.data(), v.data(), out.data());
    cpu::sum_per_channel<float>(n, hw, ca, x.data(), dv.data());
    auto x_dev = gpu.upload<T>(x), v_dev = gpu.upload<T>(v);
    auto out_dev = gpu.garbage<T>(out.size()), dv_dev = gpu.garbage<T>(dv.size());
    add_per_channel<T>(n, hw, ca, x_dev.data(), v_dev.data(), out_dev.data(), gpu.stream);
    sum_per_channel<T>(n, hw, ca, x_dev.data(), dv_dev.data(), gpu.stream);
    expect_close(name + " add_per_channel", gpu.download(out_dev), out, bound);
    // A sum over up to 4096 pixels: its rounding to T is the only difference.
    expect_close(name + " sum_per_channel", gpu.download(dv_dev), dv, bound);
  }
}

// ---- Losses and latent sampling ----------------------------------------------------------
TYPED_TEST(CudaOps, L1) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda_device_problem();
  using T = TypeParam;
  const double bound = Dtype<T>::kBound;
  Gpu gpu;
  Rng rng(14, 0);
  for (const ElementwiseCase& c : kElementwiseCases) {
    const size_t n = size_t(c.n);
    const int o = c.offset;
    const Floats x = representable<T>(random_floats(n, rng));
    Floats t = representable<T>(random_floats(n, rng));
    for (size_t i = 0; i < n; i += 5) t[i] = x[i];  // sign(0) = 0
    auto x_dev = gpu.upload<T>(x, o), t_dev = gpu.upload<T>(t, o);

    auto scratch = gpu.reduction_scratch(c.n);
    const double sum = l1_forward<T>(c.n, x_dev.data() + o, t_dev.data() + o, scratch.data(),
                                     gpu.stream);
    const double again = l1_forward<T>(c.n, x_dev.data() + o, t_dev.data() + o, scratch.data(),
                                       gpu.stream);
    // The CPU sums the same rounded values in double: both bounds are fp32's.
    expect_close(case_name<T>("l1_forward", c.n, o), sum,
                 cpu::l1_forward<float>(c.n, x.data(), t.data()), Dtype<float>::kBound);
    EXPECT_EQ(sum, again) << case_name<T>("l1_forward", c.n, o) << " is not deterministic";

    Floats dx(n);
    cpu::l1_backward<float>(c.n, x.data(), t.data(), 0.37f, dx.data());
    auto dx_dev = gpu.garbage<T>(n, o);
    l1_backward<T>(c.n, x_dev.data() + o, t_dev.data() + o, 0.37f, dx_dev.data() + o, gpu.stream);
    expect_close(case_name<T>("l1_backward", c.n, o), gpu.download(dx_dev, o), dx, bound);
  }
}

TYPED_TEST(CudaOps, AdversarialLoss) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda_device_problem();
  using T = TypeParam;
  const double bound = Dtype<T>::kBound;
  Gpu gpu;
  Rng rng(14, 2);
  for (AdversarialCriterion criterion :
       {AdversarialCriterion::kLeastSquares, AdversarialCriterion::kHinge, AdversarialCriterion::kBce})
    for (bool real : {true, false})
      for (const ElementwiseCase& c : kElementwiseCases) {
        const size_t n = size_t(c.n);
        const int o = c.offset;
        Floats x = random_floats(n, rng);
        for (float& v : x) v *= 6.0f;  // into sigmoid's and tanh's saturation
        x = representable<T>(x);
        auto x_dev = gpu.upload<T>(x, o);
        auto scratch = gpu.reduction_scratch(c.n);
        const std::string name = case_name<T>("adversarial_loss", c.n, o) + " criterion " +
                                 std::to_string(int(criterion)) + (real ? " real" : " fake");
        const double sum = adversarial_loss_forward<T>(criterion, real, c.n, x_dev.data() + o, scratch.data(), gpu.stream);
        const double again = adversarial_loss_forward<T>(criterion, real, c.n, x_dev.data() + o, scratch.data(), gpu.stream);
        // The same rounded logits on both sides: the activations differ by fp32 libm ulps.
        expect_close(name + " forward", sum, cpu::adversarial_loss_forward<float>(criterion, real, c.n, x.data()),
                     Dtype<float>::kBound);
        EXPECT_EQ(sum, again) << name << " is not deterministic";
        Floats dx(n);
        cpu::adversarial_loss_backward<float>(criterion, real, c.n, x.data(), 0.37f, dx.data());
        auto dx_dev = gpu.garbage<T>(n, o);
        adversarial_loss_backward<T>(criterion, real, c.n, x_dev.data() + o, 0.37f, dx_dev.data() + o, gpu.stream);
        expect_close(name + " backward", gpu.download(dx_dev, o), dx, bound);
      }
}

TYPED_TEST(CudaOps, SquaredError) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda_device_problem();
  using T = TypeParam;
  const double bound = Dtype<T>::kBound;
  Gpu gpu;
  Rng rng(14, 1);
  for (const ElementwiseCase& c : kElementwiseCases) {
    const size_t n = size_t(c.n);
    const int o = c.offset;
    const Floats x = representable<T>(random_floats(n, rng));
    const Floats t = representable<T>(random_floats(n, rng));
    auto x_dev = gpu.upload<T>(x, o), t_dev = gpu.upload<T>(t, o);
    auto scratch = gpu.reduction_scratch(c.n);
    const double sum = mse_forward<T>(c.n, x_dev.data() + o, t_dev.data() + o, scratch.data(),
                                      gpu.stream);
    expect_close(case_name<T>("mse_forward", c.n, o), sum,
                 cpu::mse_forward<float>(c.n, x.data(), t.data()), Dtype<float>::kBound);
    Floats dx(n);
    cpu::mse_backward<float>(c.n, x.data(), t.data(), 0.37f, dx.data());
    auto dx_dev = gpu.garbage<T>(n, o);
    mse_backward<T>(c.n, x_dev.data() + o, t_dev.data() + o, 0.37f, dx_dev.data() + o, gpu.stream);
    expect_close(case_name<T>("mse_backward", c.n, o), gpu.download(dx_dev, o), dx, bound);
  }
}

// logvar inside the clamp, or with values at and beyond its ends. fp16 cannot hold the KL
// gradient near the top of the clamp (0.25·½·e^20 ≈ 6e7 > 65504, its largest finite value:
// a real fp16 overflow, which the trainer's loss scaling reacts to), so for fp16 the
// in-clamp top values are replaced by 11.5 and 12 (twice accumulated: ≈ 4e4). The top end
// itself is covered by fp32 and bf16 (the clamp code is the same for every T); fp16 still
// checks the bottom end and beyond the top (25: z uses e^(20/2), finite; gradients 0).
template <class T>
Floats random_logvar(size_t n, Rng& rng, bool extremes) {
  Floats lv = random_floats(n, rng, -3, 3);
  if (extremes) {
    const float ends[] = {-40.0f, -30.0f, -29.5f, 19.5f, 20.0f, 25.0f};
    const float ends_fp16[] = {-40.0f, -30.0f, -29.5f, 11.5f, 12.0f, 25.0f};
    const float* pick = std::is_same_v<T, half_t> ? ends_fp16 : ends;
    for (size_t i = 0; i < n; i += 3) lv[i] = pick[rng.below(6)];
  }
  return lv;
}

TYPED_TEST(CudaOps, ReparameterizeAndKl) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda_device_problem();
  using T = TypeParam;
  const double bound = Dtype<T>::kBound;
  Gpu gpu;
  Rng rng(15, 0);
  for (const ElementwiseCase& c : kElementwiseCases) {
    for (bool extremes : {false, true}) {
      const size_t n = size_t(c.n);
      const int o = c.offset;
      const std::string suffix = extremes ? " (clamp ends)" : "";
      const Floats mu = representable<T>(random_floats(n, rng, -2, 2));
      const Floats lv = representable<T>(random_logvar<T>(n, rng, extremes));
      const Floats eps = representable<T>(random_floats(n, rng, -2, 2));
      const Floats dz = representable<T>(random_floats(n, rng));
      auto mu_dev = gpu.upload<T>(mu, o), lv_dev = gpu.upload<T>(lv, o);
      auto eps_dev = gpu.upload<T>(eps, o), dz_dev = gpu.upload<T>(dz, o);

      Floats z(n), dmu(n), dlv(n);
      cpu::reparameterize_forward<float>(c.n, mu.data(), lv.data(), eps.data(), z.data());
      cpu::reparameterize_backward<float>(c.n, lv.data(), eps.data(), dz.data(), dmu.data(),
                                          dlv.data());
      auto z_dev = gpu.garbage<T>(n, o), dmu_dev = gpu.garbage<T>(n, o);
      auto dlv_dev = gpu.garbage<T>(n, o);
      reparameterize_forward<T>(c.n, mu_dev.data() + o, lv_dev.data() + o, eps_dev.data() + o,
                                z_dev.data() + o, gpu.stream);
      reparameterize_backward<T>(c.n, lv_dev.data() + o, eps_dev.data() + o, dz_dev.data() + o,
                                 dmu_dev.data() + o, dlv_dev.data() + o, gpu.stream);
      expect_close(case_name<T>("reparameterize_forward", c.n, o) + suffix,
                   gpu.download(z_dev, o), z, bound);
      expect_close(case_name<T>("reparameterize_backward dmu", c.n, o) + suffix,
                   gpu.download(dmu_dev, o), dmu, bound);
      expect_close(case_name<T>("reparameterize_backward dlogvar", c.n, o) + suffix,
                   gpu.download(dlv_dev, o), dlv, bound);

      auto scratch = gpu.reduction_scratch(c.n);
      const double kl = kl_forward<T>(c.n, mu_dev.data() + o, lv_dev.data() + o, scratch.data(),
                                      gpu.stream);
      expect_close(case_name<T>("kl_forward", c.n, o) + suffix, kl,
                   cpu::kl_forward<float>(c.n, mu.data(), lv.data()), Dtype<float>::kBound);

      // Accumulates onto existing gradients, twice.
      const Floats dmu0 = representable<T>(random_floats(n, rng));
      const Floats dlv0 = representable<T>(random_floats(n, rng));
      Floats dmu_once = dmu0, dlv_once = dlv0, dmu_twice, dlv_twice;
      cpu::kl_backward_accumulate<float>(c.n, mu.data(), lv.data(), 0.25f, dmu_once.data(),
                                         dlv_once.data());
      dmu_twice = dmu_once, dlv_twice = dlv_once;
      cpu::kl_backward_accumulate<float>(c.n, mu.data(), lv.data(), 0.25f, dmu_twice.data(),
                                         dlv_twice.data());
      auto gmu_dev = gpu.upload<T>(dmu0, o), glv_dev = gpu.upload<T>(dlv0, o);
      kl_backward_accumulate<T>(c.n, mu_dev.data() + o, lv_dev.data() + o, 0.25f,
                                gmu_dev.data() + o, glv_dev.data() + o, gpu.stream);
      expect_close(case_name<T>("kl_backward dmu (once)", c.n, o) + suffix,
                   gpu.download(gmu_dev, o), dmu_once, bound);
      expect_close(case_name<T>("kl_backward dlogvar (once)", c.n, o) + suffix,
                   gpu.download(glv_dev, o), dlv_once, bound);
      kl_backward_accumulate<T>(c.n, mu_dev.data() + o, lv_dev.data() + o, 0.25f,
                                gmu_dev.data() + o, glv_dev.data() + o, gpu.stream);
      expect_close(case_name<T>("kl_backward dmu (twice)", c.n, o) + suffix,
                   gpu.download(gmu_dev, o), dmu_twice, bound);
      expect_close(case_name<T>("kl_backward dlogvar (twice)", c.n, o) + suffix,
                   gpu.download(glv_dev, o), dlv_twice, bound);
    }
  }
}

// ---- Optimizer ---------------------------------------------------------------------------
// The GPU AdamW over the whole flat buffer against ladder::AdamW for several steps, with a
// decay mask built from the parameter table (padding not decayed), the bf16 working copy
// checked bit for bit against the rounding of the updated fp32 weights.
TEST(CudaOptimizer, AdamWMatchesCpu) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda_device_problem();
  Gpu gpu;
  Rng rng(16, 0);
  ParamStore store;
  store.add("conv.weight", {5, 3, 3, 7}, ParamInit::kFanInUniform, 63, true);
  store.add("norm.weight", {5}, ParamInit::kOnes, 1, false);
  store.add("linear.weight", {11, 13}, ParamInit::kFanInUniform, 13, true);
  store.add("linear.bias", {11}, ParamInit::kZeros, 1, false);
  store.allocate(512);  // 315 + 5 + 143 + 11 = 474 real elements, then padding
  store.initialize(3);
  const int64_t n = store.padded_count();
  ASSERT_GE(n, store.count());
  std::vector<uint8_t> mask(size_t(n), 0);
  for (const ParamEntry& e : store.entries())
    if (e.decay) std::fill(mask.begin() + e.offset, mask.begin() + e.offset + e.numel, 1);

  AdamWSettings settings;
  settings.beta1 = 0.9, settings.beta2 = 0.95, settings.eps = 1e-8, settings.weight_decay = 0.1;
  for (bool with_mask : {true, false}) {
    // Without a mask nothing decays: the same as the CPU with weight_decay 0.
    AdamWSettings cpu_settings = settings;
    if (!with_mask) cpu_settings.weight_decay = 0;
    Floats params(store.values(), store.values() + n);
    AdamW cpu_adamw(store, {Range{0, n}}, cpu_settings);

    auto p_dev = gpu.upload<float>(params);
    auto m_dev = gpu.upload<float>(Floats(size_t(n), 0.0f));
    auto v_dev = gpu.upload<float>(Floats(size_t(n), 0.0f));
    auto w_dev = gpu.garbage<bf16_t>(size_t(n));
    DeviceBuffer<uint8_t> mask_dev(gpu.allocator, n);
    mask_dev.copy_from_host(mask.data(), n);

    for (int step = 1; step <= 6; ++step) {
      Floats grads = random_floats(size_t(n), rng, -0.1 * step, 0.1 * step);
      for (size_t i = 0; i < grads.size(); i += 17) grads[i] = 0;  // untouched moments
      const double lr = 1e-2 * step / 6.0;
      cpu_adamw.step(params.data(), grads.data(), lr);

      auto g_dev = gpu.upload<float>(grads);
      const AdamWScalars s = adamw_scalars(settings.beta1, settings.beta2, settings.eps,
                                           settings.weight_decay, lr, step);
      // Step 4 skips the working copy (null): the next step writes it again.
      adamw_step(n, s, p_dev.data(), g_dev.data(), m_dev.data(), v_dev.data(),
                 with_mask ? mask_dev.data() : nullptr, step == 4 ? nullptr : w_dev.data(),
                 gpu.stream);
      const Floats got = gpu.download(p_dev);
      const std::string name = std::string("adamw step ") + std::to_string(step) +
                               (with_mask ? " (mask)" : " (no mask)");
      expect_close(name, got, params, 1e-5);
      if (step != 4) {
        const Floats working = gpu.download(w_dev);
        ASSERT_EQ(representable<bf16_t>(got), working) << name << ": bf16 working copy";
      }
    }
  }
}

TEST(CudaOptimizer, SquaredNormIsDeterministic) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda_device_problem();
  Gpu gpu;
  Rng rng(17, 0);
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(4096), int64_t(100003), int64_t(1) << 20}) {
    const Floats values = random_floats(size_t(n), rng, -3, 3);
    auto values_dev = gpu.upload<float>(values);
    auto scratch = gpu.reduction_scratch(n);
    const double got = squared_norm(n, values_dev.data(), scratch.data(), gpu.stream);
    const double want = ladder::squared_norm(values.data(), n);
    expect_close("squared_norm n=" + std::to_string(n), got, want, 1e-9);

    DeviceBuffer<double> result(gpu.allocator, 1);
    squared_norm_async(n, values_dev.data(), result.data(), scratch.data(), gpu.stream);
    gpu.stream.synchronize();
    double again = -1;
    result.copy_to_host(&again, 1);
    EXPECT_EQ(got, again) << "squared_norm n=" << n << " is not deterministic";
  }
}

// ---- Device memory -----------------------------------------------------------------------
TEST(CudaMemory, AllocatorCountsAndReportsOutOfMemory) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda_device_problem();
  DeviceAllocator allocator;
  {
    DeviceBuffer<float> a(allocator, 1000);
    EXPECT_EQ(allocator.current_bytes(), 4000);
    DeviceBuffer<bf16_t> b(allocator, 10);
    EXPECT_EQ(allocator.current_bytes(), 4020);
    DeviceBuffer<float> moved(std::move(a));
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(moved.size(), 1000);
    EXPECT_EQ(allocator.live_allocations(), 2);
    moved = DeviceBuffer<float>(allocator, 10);  // frees the 4000 bytes
    EXPECT_EQ(allocator.current_bytes(), 60);
  }
  EXPECT_EQ(allocator.current_bytes(), 0);
  EXPECT_EQ(allocator.live_allocations(), 0);
  EXPECT_EQ(allocator.peak_bytes(), 4060);
  allocator.reset_peak();
  EXPECT_EQ(allocator.peak_bytes(), 0);

  const int64_t huge = int64_t(1) << 50;  // 1 PiB
  try {
    DeviceBuffer<uint8_t> too_big(allocator, huge);
    FAIL() << "a 1 PiB allocation succeeded";
  } catch (const DeviceOutOfMemory& e) {
    EXPECT_EQ(e.requested_bytes(), huge);
    EXPECT_GT(e.device_total_bytes(), 0);
    EXPECT_NE(std::string(e.what()).find("asked for"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("free of"), std::string::npos) << e.what();
  }
  EXPECT_EQ(allocator.current_bytes(), 0);
  // The error was cleared: allocation and kernels still work.
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  CudaStream stream;
  CudaEvent start(true), end(true);
  DeviceBuffer<float> x(allocator, 1024);
  x.zero_async(stream);
  start.record(stream);
  scale_inplace<float>(x.size(), 2.0f, x.data(), stream);
  end.record(stream);
  end.synchronize();
  EXPECT_TRUE(end.done());
  EXPECT_GE(CudaEvent::elapsed_ms(start, end), 0.0f);
}

}  // namespace
}  // namespace ladder::cuda
