// Why this file exists: the CPU backend's oneDNN convolutions against the reference
// (kernels/cpu/conv2d.cpp, itself checked by finite differences in test_ops_grad.cpp), for
// every shape class the models use — 3×3 stride 1 "same", 1×1, the stride-2 downsamplers
// (bottom/right padding of the autoencoder, symmetric of the UNet), the discriminator's 4×4
// convolutions, LPIPS's AlexNet 11×11 stride 4 and 5×5 — with odd sizes, channel
// counts off the SIMD width and batches of 1 and 3: forward with and without bias, backward
// data, and backward filter accumulating into existing gradients; the 3×3 shapes large enough
// for the Winograd passes among them. Also: equal inputs give equal bits (determinism, which
// bit-identical resume relies on), Winograd's included.
#include <gtest/gtest.h>

#include <dnnl.hpp>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/cpu/onednn_conv.h"
#include "fast_path_checks.h"
#include "kernels/cpu/ops.h"

namespace ladder::cpu {
namespace {

using testing::random_floats;
using testing::relative_error;

struct Case {
  const char* what;
  Conv2dDims d;
};

const Case kCases[] = {
    {"3x3 same", Conv2dDims::make(2, 9, 7, 5, 6, 3, 1, 1, 1, 1, 1)},
    {"3x3 same, 32 -> 64 channels", Conv2dDims::make(1, 8, 8, 32, 64, 3, 1, 1, 1, 1, 1)},
    {"1x1", Conv2dDims::make(3, 5, 6, 7, 3, 1, 1, 0, 0, 0, 0)},
    {"1x1, 64 -> 16", Conv2dDims::make(2, 4, 4, 64, 16, 1, 1, 0, 0, 0, 0)},
    {"3x3 stride 2, bottom/right padding", Conv2dDims::make(2, 8, 10, 6, 6, 3, 2, 0, 0, 1, 1)},
    {"3x3 stride 2, symmetric padding, odd size", Conv2dDims::make(1, 9, 9, 16, 16, 3, 2, 1, 1, 1, 1)},
    {"3x3 same, 1 channel in", Conv2dDims::make(2, 6, 6, 1, 8, 3, 1, 1, 1, 1, 1)},
    // The PatchDiscriminator: 4x4 padding 1, stride 2 (H -> H/2) and stride 1 (H -> H - 1, and the
    // final conv to 1 channel).
    {"4x4 stride 2, padding 1", Conv2dDims::make(2, 16, 12, 3, 8, 4, 2, 1, 1, 1, 1)},
    {"4x4 stride 1, padding 1", Conv2dDims::make(2, 7, 9, 16, 32, 4, 1, 1, 1, 1, 1)},
    {"4x4 stride 1, padding 1, 1 channel out", Conv2dDims::make(3, 6, 6, 32, 1, 4, 1, 1, 1, 1, 1)},
    // LPIPS's AlexNet: conv1 11x11 stride 4 padding 2 (3 channels in, 64 out; a size not
    // divisible by the stride) and conv2 5x5 padding 2.
    {"11x11 stride 4, padding 2", Conv2dDims::make(2, 35, 30, 3, 64, 11, 4, 2, 2, 2, 2)},
    {"5x5 stride 1, padding 2", Conv2dDims::make(2, 7, 6, 64, 24, 5, 1, 2, 2, 2, 2)},
    // Winograd-sized 3x3 "same" convolutions (>= 32 channels, >= 1024 output pixels): sizes
    // off the 4x4 output tile, channels off the 16-wide block. Winograd's transforms round
    // differently from a direct sum (1.6e-6 of the largest value here, the direct kernels'
    // ~1e-7), within the same bound.
    {"3x3 same, Winograd-sized", Conv2dDims::make(2, 32, 32, 32, 64, 3, 1, 1, 1, 1, 1)},
    {"3x3 same, Winograd-sized, odd sizes and channels", Conv2dDims::make(3, 19, 23, 40, 33, 3, 1, 1, 1, 1, 1)},
    // InceptionV3's rectangular kernels and its unpadded stride-2 stem.
    {"1x7 same", Conv2dDims::make_rectangular(2, 17, 17, 32, 48, 1, 7, 1, 0, 3, 0, 3)},
    {"7x1 same", Conv2dDims::make_rectangular(2, 17, 17, 48, 32, 7, 1, 1, 3, 0, 3, 0)},
    {"3x1 same, odd channels", Conv2dDims::make_rectangular(1, 8, 8, 33, 19, 3, 1, 1, 1, 0, 1, 0)},
    {"3x3 stride 2 valid", Conv2dDims::make(2, 35, 35, 16, 24, 3, 2, 0, 0, 0, 0)},
};

bool has_avx512() { return dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core; }

TEST(OneDnnConv, EqualsTheReferenceForEveryShapeClass) {
  OneDnnConvolutions fast;
  Rng rng(3, 0);
  for (const Case& c : kCases) {
    const Conv2dDims& d = c.d;
    const std::vector<float> x = random_floats(d.x_size(), rng), w = random_floats(d.w_size(), rng), b = random_floats(d.cout, rng),
                             dy = random_floats(d.y_size(), rng);
    std::vector<float> want(static_cast<size_t>(d.y_size())), got(want.size(), 7.f);
    conv2d_forward<float>(d, x.data(), w.data(), b.data(), want.data());
    fast.forward(d, x.data(), w.data(), b.data(), got.data());
    EXPECT_LT(relative_error(got, want), 1e-5) << c.what << ": forward";
    conv2d_forward<float>(d, x.data(), w.data(), nullptr, want.data());
    fast.forward(d, x.data(), w.data(), nullptr, got.data());
    EXPECT_LT(relative_error(got, want), 1e-5) << c.what << ": forward without bias";

    std::vector<float> dx_want(static_cast<size_t>(d.x_size())), dx_got(dx_want.size(), 7.f);
    conv2d_backward_data<float>(d, dy.data(), w.data(), dx_want.data());
    fast.backward_data(d, dy.data(), w.data(), dx_got.data());
    EXPECT_LT(relative_error(dx_got, dx_want), 1e-5) << c.what << ": backward data";

    // Accumulating into gradients that already hold something.
    std::vector<float> dw_want = random_floats(d.w_size(), rng), db_want = random_floats(d.cout, rng);
    std::vector<float> dw_got = dw_want, db_got = db_want;
    conv2d_backward_filter<float>(d, x.data(), dy.data(), dw_want.data(), db_want.data());
    fast.backward_filter(d, x.data(), dy.data(), dw_got.data(), db_got.data());
    EXPECT_LT(relative_error(dw_got, dw_want), 1e-5) << c.what << ": backward filter";
    EXPECT_LT(relative_error(db_got, db_want), 1e-5) << c.what << ": backward bias";
    std::vector<float> dw_only = dw_got;
    fast.backward_filter(d, x.data(), dy.data(), dw_only.data(), nullptr);  // db null: weights only
    for (size_t i = 0; i < dw_only.size(); ++i) dw_only[i] -= dw_got[i];
    std::vector<float> once(dw_got.size(), 0.f);
    fast.backward_filter(d, x.data(), dy.data(), once.data(), nullptr);
    EXPECT_LT(relative_error(dw_only, once), 1e-4) << c.what << ": a second accumulation adds the same";
  }
}

// Which shapes take Winograd: 3x3 stride-1 "same" with >= 32 channels in and out and >= 1024
// output pixels, on CPUs with AVX-512 (oneDNN has no fp32 Winograd below it).
TEST(OneDnnConv, WinogradServesLargeSameConvolutionsOnly) {
  OneDnnConvolutions fast;
  EXPECT_EQ(fast.uses_winograd(Conv2dDims::make(2, 32, 32, 32, 64, 3, 1, 1, 1, 1, 1)), has_avx512());
  EXPECT_EQ(fast.uses_winograd(Conv2dDims::make(1, 32, 32, 64, 64, 3, 1, 1, 1, 1, 1)), has_avx512());
  EXPECT_FALSE(fast.uses_winograd(Conv2dDims::make(1, 31, 32, 64, 64, 3, 1, 1, 1, 1, 1)));  // 992 pixels
  EXPECT_FALSE(fast.uses_winograd(Conv2dDims::make(2, 32, 32, 16, 64, 3, 1, 1, 1, 1, 1)));  // 16 channels in
  EXPECT_FALSE(fast.uses_winograd(Conv2dDims::make(2, 32, 32, 64, 3, 3, 1, 1, 1, 1, 1)));   // 3 channels out
  EXPECT_FALSE(fast.uses_winograd(Conv2dDims::make(2, 64, 64, 64, 64, 3, 2, 0, 0, 1, 1)));  // stride 2
  EXPECT_FALSE(fast.uses_winograd(Conv2dDims::make(2, 32, 32, 64, 64, 1, 1, 0, 0, 0, 0)));  // 1x1
}

// The isa-avx2 reruns (tests/CMakeLists.txt) set DNNL_MAX_CPU_ISA=AVX2: oneDNN must then run
// no AVX-512 kernel, or those reruns would prove nothing about AVX2 machines.
TEST(OneDnnConv, HonoursTheIsaCapOfTheEnvironment) {
  const char* cap = std::getenv("DNNL_MAX_CPU_ISA");
  if (cap == nullptr || std::string(cap) != "AVX2") GTEST_SKIP() << "DNNL_MAX_CPU_ISA is not AVX2";
  EXPECT_EQ(dnnl::get_effective_cpu_isa(), dnnl::cpu_isa::avx2);  // ladder needs AVX2 (x86-64-v3)
  EXPECT_FALSE(has_avx512());
  EXPECT_FALSE(OneDnnConvolutions().uses_winograd(Conv2dDims::make(2, 32, 32, 32, 64, 3, 1, 1, 1, 1, 1)));
}

TEST(OneDnnConv, EqualInputsGiveEqualBits) {
  // A direct shape and a Winograd-sized one.
  for (const Conv2dDims& d : {Conv2dDims::make(3, 16, 16, 32, 32, 3, 1, 1, 1, 1, 1),
                              Conv2dDims::make(2, 32, 32, 48, 32, 3, 1, 1, 1, 1, 1)}) {
    OneDnnConvolutions a, b;
    Rng rng(4, 0);
    const std::vector<float> x = random_floats(d.x_size(), rng), w = random_floats(d.w_size(), rng),
                             bias = random_floats(d.cout, rng), dy = random_floats(d.y_size(), rng);
    std::vector<float> dw_a(static_cast<size_t>(d.w_size()), 0.f), dw_b = dw_a, dx_a(static_cast<size_t>(d.x_size())),
        dx_b = dx_a, y_a(static_cast<size_t>(d.y_size())), y_b = y_a;
    a.forward(d, x.data(), w.data(), bias.data(), y_a.data());
    b.forward(d, x.data(), w.data(), bias.data(), y_b.data());
    a.backward_filter(d, x.data(), dy.data(), dw_a.data(), nullptr);
    b.backward_filter(d, x.data(), dy.data(), dw_b.data(), nullptr);
    a.backward_data(d, dy.data(), w.data(), dx_a.data());
    b.backward_data(d, dy.data(), w.data(), dx_b.data());
    EXPECT_EQ(y_a, y_b) << d.h << "x" << d.w;
    EXPECT_EQ(dw_a, dw_b) << d.h << "x" << d.w;
    EXPECT_EQ(dx_a, dx_b) << d.h << "x" << d.w;
  }
}

}  // namespace
}  // namespace ladder::cpu
