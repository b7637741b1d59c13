// Why this file exists: proves every CPU op's backward against its forward. One harness
// (check_gradients) takes an op as a forward and a backward over named double operands and
// checks, on tiny shapes:
//   - finite differences: for L = Σ r·y (r fixed random), the analytic gradient of every
//     differentiable operand matches the central difference;
//   - conventions: activation gradients are written (the buffer is prefilled with NaN and the
//     result is the same), parameter gradients accumulate (a second backward doubles them).
// Forward values of conv2d (every code path, several chunks), group_norm and attention are
// checked against naive loops, and the OpenMP ops against themselves at other thread counts.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/cpu/ops.h"

namespace ladder::cpu {
namespace {

using Vec = std::vector<double>;

// How the backward produces an operand's gradient.
enum class Grad { kWritten, kAccumulated, kNone };

struct Operand {
  std::string name;
  Vec value;
  Grad grad;
};

struct GradCase {
  std::vector<Operand> inputs;
  std::vector<size_t> output_sizes;
  // outputs[i] (sized output_sizes[i]) from the input values.
  std::function<void(const std::vector<Vec>& in, std::vector<Vec>& out)> forward;
  // Gradients of the inputs (grads[i] sized like in[i]; kNone operands untouched) from the
  // output gradients, following each operand's Grad convention.
  std::function<void(const std::vector<Vec>& in, const std::vector<Vec>& dout,
                     std::vector<Vec>& grads)>
      backward;
};

Vec random_vec(size_t n, Rng& rng, double lo = -1.0, double hi = 1.0) {
  Vec v(n);
  for (double& x : v) x = rng.uniform(lo, hi);
  return v;
}

std::vector<Vec> run_forward(const GradCase& c, const std::vector<Vec>& in) {
  std::vector<Vec> out(c.output_sizes.size());
  for (size_t i = 0; i < out.size(); ++i) out[i].assign(c.output_sizes[i], 0.0);
  c.forward(in, out);
  return out;
}

// Σ r·(plus − minus), output by output: outputs an input does not reach cancel exactly, so
// the rounding noise of the difference stays at the scale of the outputs that move.
double weighted_difference(const std::vector<Vec>& plus, const std::vector<Vec>& minus,
                           const std::vector<Vec>& r) {
  double sum = 0;
  for (size_t i = 0; i < r.size(); ++i)
    for (size_t j = 0; j < r[i].size(); ++j) sum += r[i][j] * (plus[i][j] - minus[i][j]);
  return sum;
}

// The finite-difference and convention checks described at the top of the file.
void check_gradients(const GradCase& c, double tolerance = 1e-6) {
  Rng rng(7, 1);
  std::vector<Vec> r;
  for (size_t size : c.output_sizes) r.push_back(random_vec(size, rng));
  std::vector<Vec> in;
  for (const Operand& op : c.inputs) in.push_back(op.value);

  // Analytic gradients, twice on the same buffers.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<Vec> grads;
  for (const Operand& op : c.inputs)
    grads.emplace_back(op.value.size(), op.grad == Grad::kWritten ? nan : 0.0);
  c.backward(in, r, grads);
  const std::vector<Vec> first = grads;
  c.backward(in, r, grads);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const Operand& op = c.inputs[i];
    if (op.grad == Grad::kNone) continue;
    for (size_t j = 0; j < grads[i].size(); ++j) {
      const double expected = op.grad == Grad::kWritten ? first[i][j] : 2.0 * first[i][j];
      ASSERT_FALSE(std::isnan(first[i][j])) << "d" << op.name << "[" << j << "] not written";
      ASSERT_NEAR(grads[i][j], expected, 1e-12 * std::max(1.0, std::abs(expected)))
          << "d" << op.name << "[" << j << "]: "
          << (op.grad == Grad::kWritten ? "a second backward must overwrite"
                                        : "a second backward must accumulate");
    }
  }

  // Central differences. Error relative to max(|analytic|, |numeric|, 1e-2).
  const double h = 1e-6;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const Operand& op = c.inputs[i];
    if (op.grad == Grad::kNone) continue;
    double worst = 0;
    size_t worst_at = 0;
    for (size_t j = 0; j < in[i].size(); ++j) {
      const double saved = in[i][j];
      in[i][j] = saved + h;
      const std::vector<Vec> plus = run_forward(c, in);
      in[i][j] = saved - h;
      const std::vector<Vec> minus = run_forward(c, in);
      in[i][j] = saved;
      const double numeric = weighted_difference(plus, minus, r) / (2 * h);
      const double analytic = first[i][j];
      const double err = std::abs(analytic - numeric) /
                         std::max({std::abs(analytic), std::abs(numeric), 1e-2});
      if (err > worst) worst = err, worst_at = j;
    }
    EXPECT_LT(worst, tolerance) << "d" << op.name << ": worst relative error at [" << worst_at
                                << "], analytic " << first[i][worst_at];
  }
}

// ---- conv2d -----------------------------------------------------------------------------------


GradCase conv_case(const Conv2dDims& d) {
  Rng rng(11, 2);
  GradCase c;
  c.inputs = {{"x", random_vec(size_t(d.x_size()), rng), Grad::kWritten},
              {"w", random_vec(size_t(d.w_size()), rng), Grad::kAccumulated},
              {"b", random_vec(d.cout, rng), Grad::kAccumulated}};
  c.output_sizes = {size_t(d.y_size())};
  c.forward = [d](const std::vector<Vec>& in, std::vector<Vec>& out) {
    conv2d_forward(d, in[0].data(), in[1].data(), in[2].data(), out[0].data());
  };
  c.backward = [d](const std::vector<Vec>& in, const std::vector<Vec>& dout,
                   std::vector<Vec>& g) {
    conv2d_backward_data(d, dout[0].data(), in[1].data(), g[0].data());
    conv2d_backward_filter(d, in[0].data(), dout[0].data(), g[1].data(), g[2].data());
  };
  return c;
}

TEST(ConvGrad, Kernel3Stride1Pad1) { check_gradients(conv_case(Conv2dDims::make(2, 5, 6, 3, 4, 3, 1, 1, 1, 1, 1))); }
TEST(ConvGrad, Kernel3Stride1AsymmetricPad) { check_gradients(conv_case(Conv2dDims::make(2, 5, 4, 3, 2, 3, 1, 2, 0, 0, 1))); }
TEST(ConvGrad, Kernel3Stride1NoPad) { check_gradients(conv_case(Conv2dDims::make(1, 5, 6, 2, 3, 3, 1, 0, 0, 0, 0))); }
TEST(ConvGrad, Kernel1Stride1) { check_gradients(conv_case(Conv2dDims::make(2, 3, 4, 5, 3, 1, 1, 0, 0, 0, 0))); }
TEST(ConvGrad, Kernel1Stride1Padded) { check_gradients(conv_case(Conv2dDims::make(1, 3, 2, 2, 3, 1, 1, 1, 1, 1, 1))); }
TEST(ConvGrad, Kernel1Stride2) { check_gradients(conv_case(Conv2dDims::make(2, 5, 4, 3, 2, 1, 2, 0, 0, 0, 0))); }
TEST(ConvGrad, Kernel3Stride2Pad1) { check_gradients(conv_case(Conv2dDims::make(2, 6, 5, 3, 4, 3, 2, 1, 1, 1, 1))); }
// The Downsample: right/bottom-only padding.
TEST(ConvGrad, Kernel3Stride2PadBottomRight) { check_gradients(conv_case(Conv2dDims::make(2, 6, 7, 3, 4, 3, 2, 0, 0, 1, 1))); }
// The PatchDiscriminator: 4×4 kernels with padding 1, stride 2 (H → H/2) and 1 (H → H − 1).
TEST(ConvGrad, Kernel4Stride2Pad1) { check_gradients(conv_case(Conv2dDims::make(2, 6, 8, 3, 2, 4, 2, 1, 1, 1, 1))); }
TEST(ConvGrad, Kernel4Stride1Pad1) { check_gradients(conv_case(Conv2dDims::make(2, 5, 4, 2, 3, 4, 1, 1, 1, 1, 1))); }
// LPIPS's AlexNet: conv1 11×11 stride 4 pad 2, conv2 5×5 pad 2.
TEST(ConvGrad, Kernel11Stride4Pad2) { check_gradients(conv_case(Conv2dDims::make(1, 15, 13, 2, 2, 11, 4, 2, 2, 2, 2))); }
TEST(ConvGrad, Kernel5Stride1Pad2) { check_gradients(conv_case(Conv2dDims::make(2, 5, 6, 2, 3, 5, 1, 2, 2, 2, 2))); }
// Rectangular kernels (InceptionV3's 1×7 and 7×1 with 'same' padding, 3×1 at stride 2).
TEST(ConvGrad, Kernel1x7Same) {
  check_gradients(conv_case(Conv2dDims::make_rectangular(2, 4, 9, 2, 3, 1, 7, 1, 0, 3, 0, 3)));
}
TEST(ConvGrad, Kernel7x1Same) {
  check_gradients(conv_case(Conv2dDims::make_rectangular(1, 9, 4, 3, 2, 7, 1, 1, 3, 0, 3, 0)));
}
TEST(ConvGrad, Kernel3x1Stride2) {
  check_gradients(conv_case(Conv2dDims::make_rectangular(2, 7, 5, 2, 3, 3, 1, 2, 1, 0, 0, 0)));
}

// Naive 7-loop convolution passes in double: y = conv(x, w) + b, dx, dw (+=), db (+=).
struct NaiveConv {
  Vec y, dx, dw, db;
};

NaiveConv naive_conv(const Conv2dDims& d, const std::vector<float>& x, const std::vector<float>& w,
                     const std::vector<float>& b, const std::vector<float>& dy) {
  NaiveConv r;
  r.y.assign(size_t(d.y_size()), 0.0), r.dx.assign(size_t(d.x_size()), 0.0), r.dw.assign(size_t(d.w_size()), 0.0);
  r.db.assign(d.cout, 0.0);
  const int ho = d.out_h(), wo = d.out_w();
  for (int n = 0; n < d.n; ++n)
    for (int oh = 0; oh < ho; ++oh)
      for (int ow = 0; ow < wo; ++ow)
        for (int co = 0; co < d.cout; ++co) {
          const size_t yi = ((size_t(n) * ho + oh) * wo + ow) * d.cout + co;
          double acc = b[co];
          const double g = dy[yi];
          r.db[co] += g;
          for (int kh = 0; kh < d.kernel_h; ++kh)
            for (int kw = 0; kw < d.kernel_w; ++kw) {
              const int ih = oh * d.stride - d.pad_top + kh, iw = ow * d.stride - d.pad_left + kw;
              if (ih < 0 || ih >= d.h || iw < 0 || iw >= d.w) continue;
              const size_t xi = ((size_t(n) * d.h + ih) * d.w + iw) * d.cin;
              const size_t wi = ((size_t(co) * d.kernel_h + kh) * d.kernel_w + kw) * d.cin;
              for (int ci = 0; ci < d.cin; ++ci) {
                acc += double(x[xi + ci]) * w[wi + ci];
                r.dx[xi + ci] += g * w[wi + ci];
                r.dw[wi + ci] += g * x[xi + ci];
              }
            }
          r.y[yi] = acc;
        }
  return r;
}

// max |got − want| / max |want|.
template <class A>
double relative_max_error(const A& got, const Vec& want) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::abs(double(got[i]) - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return err / std::max(scale, 1e-30);
}

std::vector<float> random_floats(size_t n, Rng& rng) {
  std::vector<float> v(n);
  for (float& x : v) x = float(rng.uniform(-1.0, 1.0));
  return v;
}

// All three float passes against the naive loops (dw, db start from a nonzero value).
void check_conv_against_naive(const Conv2dDims& d) {
  Rng rng(3, 4);
  const auto x = random_floats(size_t(d.x_size()), rng), w = random_floats(size_t(d.w_size()), rng);
  const auto b = random_floats(d.cout, rng), dy = random_floats(size_t(d.y_size()), rng);
  NaiveConv want = naive_conv(d, x, w, b, dy);
  for (double& v : want.dw) v += 0.5;
  for (double& v : want.db) v += 0.5;
  std::vector<float> y(size_t(d.y_size())), dx(size_t(d.x_size()), 9.f), dw(size_t(d.w_size()), 0.5f), db(d.cout, 0.5f);
  conv2d_forward(d, x.data(), w.data(), b.data(), y.data());
  conv2d_backward_data(d, dy.data(), w.data(), dx.data());
  conv2d_backward_filter(d, x.data(), dy.data(), dw.data(), db.data());
  EXPECT_LT(relative_max_error(y, want.y), 1e-5) << "forward";
  EXPECT_LT(relative_max_error(dx, want.dx), 1e-5) << "backward_data";
  EXPECT_LT(relative_max_error(dw, want.dw), 1e-5) << "backward_filter dw";
  EXPECT_LT(relative_max_error(db, want.db), 1e-5) << "backward_filter db";
}

TEST(ConvValue, Kernel3Stride1) { check_conv_against_naive(Conv2dDims::make(2, 9, 11, 5, 7, 3, 1, 1, 1, 1, 1)); }
TEST(ConvValue, Kernel3Stride1AsymmetricPad) { check_conv_against_naive(Conv2dDims::make(2, 8, 6, 3, 9, 3, 1, 0, 2, 1, 0)); }
TEST(ConvValue, Kernel1) { check_conv_against_naive(Conv2dDims::make(2, 7, 5, 13, 6, 1, 1, 0, 0, 0, 0)); }
TEST(ConvValue, Kernel3Stride2PadBottomRight) { check_conv_against_naive(Conv2dDims::make(2, 9, 8, 12, 19, 3, 2, 0, 0, 1, 1)); }
// Large enough that every pass works in several chunks, with chunk boundaries inside images.
TEST(ConvValue, Kernel3Stride1ManyChunks) { check_conv_against_naive(Conv2dDims::make(3, 70, 66, 37, 45, 3, 1, 1, 1, 1, 1)); }
TEST(ConvValue, Kernel3Stride2ManyChunks) { check_conv_against_naive(Conv2dDims::make(3, 70, 66, 37, 45, 3, 2, 0, 0, 1, 1)); }
TEST(ConvValue, Kernel4Stride2Pad1) { check_conv_against_naive(Conv2dDims::make(2, 32, 30, 5, 16, 4, 2, 1, 1, 1, 1)); }
TEST(ConvValue, Kernel4Stride1Pad1) { check_conv_against_naive(Conv2dDims::make(2, 9, 11, 16, 1, 4, 1, 1, 1, 1, 1)); }
TEST(ConvValue, Kernel11Stride4Pad2) { check_conv_against_naive(Conv2dDims::make(2, 64, 60, 3, 16, 11, 4, 2, 2, 2, 2)); }
TEST(ConvValue, Kernel5Stride1Pad2) { check_conv_against_naive(Conv2dDims::make(2, 15, 13, 16, 24, 5, 1, 2, 2, 2, 2)); }
TEST(ConvValue, Kernel1x7And7x1Same) {
  check_conv_against_naive(Conv2dDims::make_rectangular(2, 17, 17, 24, 20, 1, 7, 1, 0, 3, 0, 3));
  check_conv_against_naive(Conv2dDims::make_rectangular(2, 17, 17, 24, 20, 7, 1, 1, 3, 0, 3, 0));
}
TEST(ConvValue, Kernel1x3And3x1Stride2AndManyChunks) {
  check_conv_against_naive(Conv2dDims::make_rectangular(2, 8, 8, 16, 12, 1, 3, 1, 0, 1, 0, 1));
  check_conv_against_naive(Conv2dDims::make_rectangular(2, 9, 8, 16, 12, 3, 1, 2, 1, 0, 0, 0));
  check_conv_against_naive(Conv2dDims::make_rectangular(3, 70, 66, 37, 45, 7, 1, 1, 3, 0, 3, 0));
}

// ---- group_norm -------------------------------------------------------------------------------

TEST(GroupNormGrad, Matches) {
  GroupNormDims d;
  d.n = 2, d.hw = 6, d.c = 6, d.groups = 3, d.eps = 1e-5;
  Rng rng(5, 1);
  GradCase c;
  c.inputs = {{"x", random_vec(size_t(d.n) * d.hw * d.c, rng, -1.0, 2.0), Grad::kWritten},
              {"gamma", random_vec(d.c, rng, 0.5, 1.5), Grad::kAccumulated},
              {"beta", random_vec(d.c, rng), Grad::kAccumulated}};
  c.output_sizes = {size_t(d.n) * d.hw * d.c};
  c.forward = [d](const std::vector<Vec>& in, std::vector<Vec>& out) {
    Vec mean(d.n * d.groups), rstd(d.n * d.groups);
    group_norm_forward(d, in[0].data(), in[1].data(), in[2].data(), out[0].data(), mean.data(),
                       rstd.data());
  };
  c.backward = [d](const std::vector<Vec>& in, const std::vector<Vec>& dout,
                   std::vector<Vec>& g) {
    Vec y(in[0].size()), mean(d.n * d.groups), rstd(d.n * d.groups);
    group_norm_forward(d, in[0].data(), in[1].data(), in[2].data(), y.data(), mean.data(),
                       rstd.data());
    group_norm_backward(d, in[0].data(), in[1].data(), mean.data(), rstd.data(),
                        dout[0].data(), g[0].data(), g[1].data(), g[2].data());
  };
  check_gradients(c);
}

TEST(GroupNormValue, MatchesNaive) {
  GroupNormDims d;
  d.n = 2, d.hw = 35, d.c = 12, d.groups = 4, d.eps = 1e-6;
  Rng rng(5, 2);
  std::vector<float> x(size_t(d.n) * d.hw * d.c), gamma = random_floats(d.c, rng),
                                                    beta = random_floats(d.c, rng);
  for (float& v : x) v = float(3.0 + rng.uniform(-1.0, 1.0));  // an offset stresses the variance
  std::vector<float> y(x.size()), mean(d.n * d.groups), rstd(d.n * d.groups);
  group_norm_forward(d, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data());
  const int cg = d.c / d.groups;
  Vec want_y(x.size()), want_mean(mean.size()), want_rstd(rstd.size());
  for (int n = 0; n < d.n; ++n)
    for (int g = 0; g < d.groups; ++g) {
      double sum = 0, sq = 0;
      const int count = d.hw * cg;
      for (int p = 0; p < d.hw; ++p)
        for (int j = 0; j < cg; ++j) sum += x[(size_t(n) * d.hw + p) * d.c + g * cg + j];
      const double mu = sum / count;
      for (int p = 0; p < d.hw; ++p)
        for (int j = 0; j < cg; ++j) {
          const double v = x[(size_t(n) * d.hw + p) * d.c + g * cg + j] - mu;
          sq += v * v;
        }
      const double rs = 1.0 / std::sqrt(sq / count + d.eps);
      want_mean[n * d.groups + g] = mu, want_rstd[n * d.groups + g] = rs;
      for (int p = 0; p < d.hw; ++p)
        for (int j = 0; j < cg; ++j) {
          const size_t i = (size_t(n) * d.hw + p) * d.c + g * cg + j;
          want_y[i] = (x[i] - mu) * rs * gamma[g * cg + j] + beta[g * cg + j];
        }
    }
  EXPECT_LT(relative_max_error(y, want_y), 1e-6);
  EXPECT_LT(relative_max_error(mean, want_mean), 1e-6);
  EXPECT_LT(relative_max_error(rstd, want_rstd), 1e-6);
}

// ---- elementwise, upsample, linear ------------------------------------------------------------

// An op y = f(x) on n elements with backward dx = g(x, dy).
GradCase unary_case(Vec x, std::function<void(int64_t, const double*, double*)> fwd,
                    std::function<void(int64_t, const double*, const double*, double*)> bwd) {
  GradCase c;
  c.output_sizes = {x.size()};
  c.inputs = {{"x", std::move(x), Grad::kWritten}};
  c.forward = [fwd](const std::vector<Vec>& in, std::vector<Vec>& out) {
    fwd(int64_t(in[0].size()), in[0].data(), out[0].data());
  };
  c.backward = [bwd](const std::vector<Vec>& in, const std::vector<Vec>& dout,
                     std::vector<Vec>& g) {
    bwd(int64_t(in[0].size()), in[0].data(), dout[0].data(), g[0].data());
  };
  return c;
}

TEST(SiluGrad, Matches) {
  Rng rng(8, 1);
  check_gradients(unary_case(random_vec(40, rng, -6.0, 6.0), silu_forward<double>,
                             silu_backward<double>));
}

TEST(ScaleGrad, Matches) {
  Rng rng(8, 2);
  const double alpha = -1.7;
  check_gradients(unary_case(
      random_vec(10, rng),
      [alpha](int64_t n, const double* x, double* y) {
        std::copy(x, x + n, y);
        scale_inplace(n, alpha, y);
      },
      [alpha](int64_t n, const double*, const double* dy, double* dx) {
        std::copy(dy, dy + n, dx);
        scale_inplace(n, alpha, dx);
      }));
}

// y = a + b; both gradients arrive through add_accumulate (two paths meeting).
TEST(AddGrad, Matches) {
  Rng rng(8, 3);
  GradCase c;
  c.inputs = {{"a", random_vec(12, rng), Grad::kAccumulated},
              {"b", random_vec(12, rng), Grad::kAccumulated}};
  c.output_sizes = {12};
  c.forward = [](const std::vector<Vec>& in, std::vector<Vec>& out) {
    add_forward(12, in[0].data(), in[1].data(), out[0].data());
  };
  c.backward = [](const std::vector<Vec>&, const std::vector<Vec>& dout, std::vector<Vec>& g) {
    add_accumulate(12, dout[0].data(), g[0].data());
    add_accumulate(12, dout[0].data(), g[1].data());
  };
  check_gradients(c);
}

// The UNet's skip concatenation: y = [a | b] per pixel; the split writes both gradients.
TEST(ConcatChannelsGrad, Matches) {
  const int64_t m = 6;
  const int ca = 3, cb = 2;
  Rng rng(8, 9);
  GradCase c;
  c.inputs = {{"a", random_vec(m * ca, rng), Grad::kWritten}, {"b", random_vec(m * cb, rng), Grad::kWritten}};
  c.output_sizes = {size_t(m * (ca + cb))};
  c.forward = [=](const std::vector<Vec>& in, std::vector<Vec>& out) {
    concat_channels(m, ca, cb, in[0].data(), in[1].data(), out[0].data());
  };
  c.backward = [=](const std::vector<Vec>&, const std::vector<Vec>& dout, std::vector<Vec>& g) {
    split_channels(m, ca, cb, dout[0].data(), g[0].data(), g[1].data());
  };
  check_gradients(c);
}

// The timestep projection: y = x + v broadcast over the pixels; dv = Σ_pixels dy.
TEST(AddPerChannelGrad, Matches) {
  const int n = 2, c_ = 3;
  const int64_t hw = 5;
  Rng rng(8, 10);
  GradCase c;
  c.inputs = {{"x", random_vec(n * hw * c_, rng), Grad::kWritten}, {"v", random_vec(n * c_, rng), Grad::kWritten}};
  c.output_sizes = {size_t(n * hw * c_)};
  c.forward = [=](const std::vector<Vec>& in, std::vector<Vec>& out) {
    add_per_channel(n, hw, c_, in[0].data(), in[1].data(), out[0].data());
  };
  c.backward = [=](const std::vector<Vec>&, const std::vector<Vec>& dout, std::vector<Vec>& g) {
    std::copy(dout[0].begin(), dout[0].end(), g[0].begin());
    sum_per_channel(n, hw, c_, dout[0].data(), g[1].data());
  };
  check_gradients(c);
}

TEST(UpsampleGrad, Matches) {
  const int n = 2, h = 2, w = 3, ch = 2;
  Rng rng(8, 4);
  GradCase c;
  c.inputs = {{"x", random_vec(n * h * w * ch, rng), Grad::kWritten}};
  c.output_sizes = {size_t(n) * 4 * h * w * ch};
  c.forward = [=](const std::vector<Vec>& in, std::vector<Vec>& out) {
    upsample_nearest2x_forward(n, h, w, ch, in[0].data(), out[0].data());
  };
  c.backward = [=](const std::vector<Vec>&, const std::vector<Vec>& dout, std::vector<Vec>& g) {
    upsample_nearest2x_backward(n, h, w, ch, dout[0].data(), g[0].data());
  };
  check_gradients(c);
}

TEST(LinearGrad, Matches) {
  const int64_t m = 5;
  const int cin = 4, cout = 3;
  Rng rng(8, 5);
  GradCase c;
  c.inputs = {{"x", random_vec(m * cin, rng), Grad::kWritten},
              {"w", random_vec(cout * cin, rng), Grad::kAccumulated},
              {"b", random_vec(cout, rng), Grad::kAccumulated}};
  c.output_sizes = {size_t(m * cout)};
  c.forward = [=](const std::vector<Vec>& in, std::vector<Vec>& out) {
    linear_forward(m, cin, cout, in[0].data(), in[1].data(), in[2].data(), out[0].data());
  };
  c.backward = [=](const std::vector<Vec>& in, const std::vector<Vec>& dout,
                   std::vector<Vec>& g) {
    linear_backward(m, cin, cout, in[0].data(), in[1].data(), dout[0].data(), g[0].data(),
                    g[1].data(), g[2].data());
  };
  check_gradients(c);
}

// ---- attention --------------------------------------------------------------------------------

TEST(AttentionGrad, TwoHeads) {
  AttentionDims d;
  d.n = 2, d.tokens = 4, d.channels = 6, d.heads = 2;
  const size_t size = size_t(d.n) * d.tokens * d.channels;
  const size_t probs = size_t(d.n) * d.heads * d.tokens * d.tokens;
  Rng rng(9, 1);
  GradCase c;
  c.inputs = {{"q", random_vec(size, rng, -2.0, 2.0), Grad::kWritten},
              {"k", random_vec(size, rng, -2.0, 2.0), Grad::kWritten},
              {"v", random_vec(size, rng), Grad::kWritten}};
  c.output_sizes = {size};
  c.forward = [=](const std::vector<Vec>& in, std::vector<Vec>& out) {
    Vec p(probs);
    attention_forward(d, in[0].data(), in[1].data(), in[2].data(), p.data(), out[0].data());
  };
  c.backward = [=](const std::vector<Vec>& in, const std::vector<Vec>& dout,
                   std::vector<Vec>& g) {
    Vec p(probs), o(size);
    attention_forward(d, in[0].data(), in[1].data(), in[2].data(), p.data(), o.data());
    attention_backward(d, in[0].data(), in[1].data(), in[2].data(), p.data(), dout[0].data(),
                       g[0].data(), g[1].data(), g[2].data());
  };
  check_gradients(c);
}

TEST(AttentionValue, MatchesNaive) {
  AttentionDims d;
  d.n = 2, d.tokens = 7, d.channels = 10, d.heads = 2;
  const int l = d.tokens, c = d.channels, hd = d.head_dim();
  Rng rng(9, 2);
  const size_t size = size_t(d.n) * l * c;
  const auto q = random_floats(size, rng), k = random_floats(size, rng),
             v = random_floats(size, rng);
  std::vector<float> probs(size_t(d.n) * d.heads * l * l), o(size);
  attention_forward(d, q.data(), k.data(), v.data(), probs.data(), o.data());
  Vec want_p(probs.size()), want_o(size);
  for (int n = 0; n < d.n; ++n)
    for (int h = 0; h < d.heads; ++h)
      for (int i = 0; i < l; ++i) {
        Vec s(l);
        for (int j = 0; j < l; ++j) {
          for (int e = 0; e < hd; ++e)
            s[j] += double(q[(size_t(n) * l + i) * c + h * hd + e]) *
                    k[(size_t(n) * l + j) * c + h * hd + e];
          s[j] /= std::sqrt(double(hd));
        }
        const double top = *std::max_element(s.begin(), s.end());
        double z = 0;
        for (double& x : s) z += (x = std::exp(x - top));
        for (int j = 0; j < l; ++j) {
          const double p = s[j] / z;
          want_p[((size_t(n) * d.heads + h) * l + i) * l + j] = p;
          for (int e = 0; e < hd; ++e)
            want_o[(size_t(n) * l + i) * c + h * hd + e] +=
                p * v[(size_t(n) * l + j) * c + h * hd + e];
        }
      }
  EXPECT_LT(relative_max_error(probs, want_p), 1e-5);
  EXPECT_LT(relative_max_error(o, want_o), 1e-5);
}

// ---- losses and latent sampling ---------------------------------------------------------------

TEST(L1Grad, Matches) {
  Rng rng(10, 1);
  Vec x = random_vec(15, rng), target = random_vec(15, rng);
  target[3] = x[3];  // sign(0) = 0, and the central difference agrees
  GradCase c;
  c.inputs = {{"x", x, Grad::kWritten}, {"target", target, Grad::kNone}};
  c.output_sizes = {1};
  c.forward = [](const std::vector<Vec>& in, std::vector<Vec>& out) {
    out[0][0] = l1_forward(int64_t(in[0].size()), in[0].data(), in[1].data());
  };
  c.backward = [](const std::vector<Vec>& in, const std::vector<Vec>& dout,
                  std::vector<Vec>& g) {
    l1_backward(int64_t(in[0].size()), in[0].data(), in[1].data(), dout[0][0], g[0].data());
  };
  check_gradients(c);
}

TEST(SquaredErrorGrad, Matches) {
  Rng rng(10, 2);
  Vec x = random_vec(15, rng), target = random_vec(15, rng);
  GradCase c;
  c.inputs = {{"x", x, Grad::kWritten}, {"target", target, Grad::kNone}};
  c.output_sizes = {1};
  c.forward = [](const std::vector<Vec>& in, std::vector<Vec>& out) {
    out[0][0] = mse_forward(int64_t(in[0].size()), in[0].data(), in[1].data());
  };
  c.backward = [](const std::vector<Vec>& in, const std::vector<Vec>& dout,
                  std::vector<Vec>& g) {
    mse_backward(int64_t(in[0].size()), in[0].data(), in[1].data(), dout[0][0], g[0].data());
  };
  check_gradients(c);
}

// Every criterion, both targets; logits away from LeakyReLU's kink and short of saturation.
TEST(AdversarialLossGrad, Matches) {
  Rng rng(10, 3);
  Vec x = random_vec(20, rng, -4.0, 4.0);
  for (double& v : x) v += v > 0 ? 0.05 : -0.05;
  for (AdversarialCriterion criterion :
       {AdversarialCriterion::kLeastSquares, AdversarialCriterion::kHinge, AdversarialCriterion::kBce})
    for (bool real : {true, false}) {
      SCOPED_TRACE(::testing::Message() << "criterion " << int(criterion) << ", real " << real);
      GradCase c;
      c.inputs = {{"logits", x, Grad::kWritten}};
      c.output_sizes = {1};
      c.forward = [=](const std::vector<Vec>& in, std::vector<Vec>& out) {
        out[0][0] = adversarial_loss_forward(criterion, real, int64_t(in[0].size()), in[0].data());
      };
      c.backward = [=](const std::vector<Vec>& in, const std::vector<Vec>& dout, std::vector<Vec>& g) {
        adversarial_loss_backward(criterion, real, int64_t(in[0].size()), in[0].data(), dout[0][0], g[0].data());
      };
      check_gradients(c);
    }
}

// logvar with two values below the clamp [−30, 20], where the gradient is zero. (Values above
// it put e^20 into the outputs, whose rounding swamps a central difference; the clamp from
// above is checked directly in LogvarClamp.)
Vec logvar_values(Rng& rng, size_t n) {
  Vec lv = random_vec(n, rng, -3.0, 3.0);
  lv[1] = -35.0, lv[4] = -30.5;
  return lv;
}

TEST(ReparameterizeGrad, Matches) {
  Rng rng(10, 2);
  const size_t n = 12;
  GradCase c;
  c.inputs = {{"mu", random_vec(n, rng), Grad::kWritten},
              {"logvar", logvar_values(rng, n), Grad::kWritten},
              {"eps", random_vec(n, rng, -2.0, 2.0), Grad::kNone}};
  c.output_sizes = {n};
  c.forward = [n](const std::vector<Vec>& in, std::vector<Vec>& out) {
    reparameterize_forward(int64_t(n), in[0].data(), in[1].data(), in[2].data(), out[0].data());
  };
  c.backward = [n](const std::vector<Vec>& in, const std::vector<Vec>& dout,
                   std::vector<Vec>& g) {
    reparameterize_backward(int64_t(n), in[1].data(), in[2].data(), dout[0].data(), g[0].data(),
                            g[1].data());
  };
  check_gradients(c);
}

TEST(KlGrad, Matches) {
  Rng rng(10, 3);
  const size_t n = 12;
  GradCase c;
  c.inputs = {{"mu", random_vec(n, rng), Grad::kAccumulated},
              {"logvar", logvar_values(rng, n), Grad::kAccumulated}};
  c.output_sizes = {1};
  c.forward = [n](const std::vector<Vec>& in, std::vector<Vec>& out) {
    out[0][0] = kl_forward(int64_t(n), in[0].data(), in[1].data());
  };
  c.backward = [n](const std::vector<Vec>& in, const std::vector<Vec>& dout,
                   std::vector<Vec>& g) {
    kl_backward_accumulate(int64_t(n), in[0].data(), in[1].data(), dout[0][0], g[0].data(),
                           g[1].data());
  };
  check_gradients(c);
}

TEST(LogvarClamp, AboveTheClampIsConstant) {
  const double mu[2] = {0.3, -0.2}, logvar[2] = {25.0, 1.0}, eps[2] = {0.7, 0.4};
  double z[2], dmu[2], dlogvar[2];
  const double dz[2] = {1.0, 1.0};
  reparameterize_forward(2, mu, logvar, eps, z);
  EXPECT_DOUBLE_EQ(z[0], 0.3 + 0.7 * std::exp(0.5 * kLogvarMax));
  reparameterize_backward(2, logvar, eps, dz, dmu, dlogvar);
  EXPECT_EQ(dmu[0], 1.0);
  EXPECT_EQ(dlogvar[0], 0.0);
  EXPECT_DOUBLE_EQ(dlogvar[1], 0.4 * 0.5 * std::exp(0.5));
  EXPECT_DOUBLE_EQ(kl_forward(1, mu, logvar),
                   0.5 * (0.09 + std::exp(kLogvarMax) - kLogvarMax - 1.0));
  double kmu[2] = {1.0, 1.0}, klv[2] = {1.0, 1.0};
  kl_backward_accumulate(2, mu, logvar, 2.0, kmu, klv);
  EXPECT_DOUBLE_EQ(kmu[0], 1.0 + 2.0 * 0.3);
  EXPECT_EQ(klv[0], 1.0);
  EXPECT_DOUBLE_EQ(klv[1], 1.0 + 2.0 * 0.5 * (std::exp(1.0) - 1.0));
}

// ---- LeakyReLU and BatchNorm (the PatchDiscriminator) ----------------------------------------

TEST(LeakyReluGrad, Matches) {
  Rng rng(13, 1);
  Vec x = random_vec(30, rng, -2.0, 2.0);
  for (double& v : x) v += v > 0 ? 0.05 : -0.05;  // away from the kink, where h would cross it
  const double slope = 0.2;
  check_gradients(unary_case(
      x, [slope](int64_t n, const double* in, double* out) { leaky_relu_forward(n, slope, in, out); },
      [slope](int64_t n, const double* in, const double* dy, double* dx) {
        leaky_relu_backward(n, slope, in, dy, dx);
      }));
}

TEST(LeakyReluValue, SlopeOnlyBelowZero) {
  const float x[4] = {-2.f, -0.f, 0.5f, 3.f}, dy[4] = {1.f, 1.f, 1.f, 2.f};
  float y[4], dx[4];
  leaky_relu_forward(4, 0.2f, x, y);
  leaky_relu_backward(4, 0.2f, x, dy, dx);
  EXPECT_FLOAT_EQ(y[0], -0.4f);
  EXPECT_EQ(y[1], 0.f);
  EXPECT_EQ(y[2], 0.5f);
  EXPECT_EQ(y[3], 3.f);
  EXPECT_FLOAT_EQ(dx[0], 0.2f);
  EXPECT_FLOAT_EQ(dx[1], 0.2f);
  EXPECT_EQ(dx[2], 1.f);
  EXPECT_EQ(dx[3], 2.f);
}

TEST(LeakyReluValue, SlopeZeroIsRelu) {
  const double x[4] = {-2.0, 0.0, 0.5, 3.0}, dy[4] = {1.0, 1.0, 1.0, 2.0};
  double y[4], dx[4];
  leaky_relu_forward(4, 0.0, x, y);
  leaky_relu_backward(4, 0.0, x, dy, dx);
  EXPECT_EQ(y[0], 0.0);
  EXPECT_EQ(y[2], 0.5);
  EXPECT_EQ(dx[0], 0.0);
  EXPECT_EQ(dx[1], 0.0);  // PyTorch's ReLU: no gradient at 0
  EXPECT_EQ(dx[3], 2.0);
  EXPECT_THROW(leaky_relu_forward(4, -0.1, x, y), std::exception);
}

// ---- max pooling and the LPIPS head ---------------------------------------------------------

// Distinct values at least 0.01 apart, so that h never changes a window's argmax.
Vec distinct_values(size_t n, Rng& rng) {
  Vec v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.01 * double(i) - 0.005 * double(n);
  for (size_t i = n; i-- > 1;) std::swap(v[i], v[size_t(rng.uniform(0.0, double(i) + 1.0 - 1e-9))]);
  return v;
}

GradCase max_pool_case(const MaxPoolDims& d) {
  Rng rng(17, 1);
  GradCase c;
  c.inputs = {{"x", distinct_values(size_t(d.n) * d.h * d.w * d.c, rng), Grad::kWritten}};
  c.output_sizes = {size_t(d.n) * d.out_h() * d.out_w() * d.c};
  c.forward = [d](const std::vector<Vec>& in, std::vector<Vec>& out) {
    max_pool2d_forward(d, in[0].data(), out[0].data());
  };
  c.backward = [d](const std::vector<Vec>& in, const std::vector<Vec>& dout, std::vector<Vec>& g) {
    max_pool2d_backward(d, in[0].data(), dout[0].data(), g[0].data());
  };
  return c;
}

MaxPoolDims pool_dims(int n, int h, int w, int c, int kernel, int stride) {
  MaxPoolDims d;
  d.n = n, d.h = h, d.w = w, d.c = c, d.kernel = kernel, d.stride = stride;
  return d;
}

TEST(MaxPoolGrad, Kernel3Stride2) { check_gradients(max_pool_case(pool_dims(2, 7, 8, 3, 3, 2))); }
TEST(MaxPoolGrad, Kernel2Stride2OddSize) { check_gradients(max_pool_case(pool_dims(2, 5, 6, 2, 2, 2))); }

TEST(MaxPoolValue, MatchesNaiveAndFirstMaximumWinsTies) {
  const MaxPoolDims d = pool_dims(2, 9, 7, 3, 3, 2);
  Rng rng(19, 1);
  Vec x = random_vec(size_t(d.n) * d.h * d.w * d.c, rng);
  Vec y(size_t(d.n) * d.out_h() * d.out_w() * d.c);
  max_pool2d_forward(d, x.data(), y.data());
  for (int i = 0; i < d.n; ++i)
    for (int oy = 0; oy < d.out_h(); ++oy)
      for (int ox = 0; ox < d.out_w(); ++ox)
        for (int ch = 0; ch < d.c; ++ch) {
          double want = -1e300;
          for (int ky = 0; ky < 3; ++ky)
            for (int kx = 0; kx < 3; ++kx)
              want = std::max(want, x[((size_t(i) * d.h + oy * 2 + ky) * d.w + ox * 2 + kx) * d.c + ch]);
          ASSERT_EQ(y[((size_t(i) * d.out_h() + oy) * d.out_w() + ox) * d.c + ch], want);
        }
  // A window of equal values (ReLU zeros) sends its gradient to the first one only.
  const MaxPoolDims one = pool_dims(1, 2, 2, 1, 2, 2);
  const double zeros[4] = {0, 0, 0, 0}, dy[1] = {3.0};
  double dx[4];
  max_pool2d_backward(one, zeros, dy, dx);
  EXPECT_EQ(dx[0], 3.0);
  EXPECT_EQ(dx[1] + dx[2] + dx[3], 0.0);
  EXPECT_THROW(max_pool2d_forward(pool_dims(1, 2, 2, 1, 3, 2), zeros, dx), std::exception);
}

TEST(ChannelStandardizeGrad, RgbAndGrayMatch) {
  Rng rng(21, 1);
  const int64_t m = 5;
  const Vec shift = {-0.030, -0.088, -0.188}, scale = {0.458, 0.448, 0.450};
  for (const int cin : {3, 1}) {
    GradCase cs;
    cs.inputs = {{"x", random_vec(size_t(m) * cin, rng), Grad::kWritten}};
    cs.output_sizes = {size_t(m) * 3};
    cs.forward = [&](const std::vector<Vec>& in, std::vector<Vec>& out) {
      channel_standardize_forward(m, cin, shift.data(), scale.data(), in[0].data(), out[0].data());
    };
    cs.backward = [&](const std::vector<Vec>&, const std::vector<Vec>& dout, std::vector<Vec>& g) {
      channel_standardize_backward(m, cin, scale.data(), dout[0].data(), g[0].data());
    };
    check_gradients(cs);
  }
  double y[3];
  const double x[3] = {1.0, 0.0, -1.0};
  channel_standardize_forward(1, 3, shift.data(), scale.data(), x, y);
  EXPECT_DOUBLE_EQ(y[0], (1.0 + 0.030) / 0.458);
  EXPECT_DOUBLE_EQ(y[2], (-1.0 + 0.188) / 0.450);
  channel_standardize_forward(1, 1, shift.data(), scale.data(), x, y);  // gray: x[0] to all three
  EXPECT_DOUBLE_EQ(y[1], (1.0 + 0.088) / 0.448);
  EXPECT_DOUBLE_EQ(y[2], (1.0 + 0.188) / 0.450);
}

TEST(ChannelUnitNormGrad, Matches) {
  Rng rng(23, 1);
  const int64_t m = 6;
  const int c = 4;
  for (const double eps : {1e-10, 0.3}) {
    GradCase cs;
    cs.inputs = {{"x", random_vec(size_t(m) * c, rng, -1.0, 2.0), Grad::kWritten}};
    cs.output_sizes = {size_t(m) * c};
    cs.forward = [&](const std::vector<Vec>& in, std::vector<Vec>& out) {
      Vec norm(m);
      channel_unit_norm_forward(m, c, eps, in[0].data(), out[0].data(), norm.data());
    };
    cs.backward = [&](const std::vector<Vec>& in, const std::vector<Vec>& dout, std::vector<Vec>& g) {
      Vec y(in[0].size()), norm(m);
      channel_unit_norm_forward(m, c, eps, in[0].data(), y.data(), norm.data());
      channel_unit_norm_backward(m, c, eps, in[0].data(), norm.data(), dout[0].data(), g[0].data());
    };
    check_gradients(cs);
  }
}

TEST(ChannelUnitNormValue, UnitLengthAndZeroPixels) {
  const double x[6] = {3.0, 4.0, 0.0, 0.0, 0.0, 0.0}, dy[6] = {1, 1, 1, 2, 3, 4};
  double y[6], norm[2], dx[6];
  channel_unit_norm_forward(2, 3, 1e-10, x, y, norm);
  EXPECT_DOUBLE_EQ(norm[0], 5.0);
  EXPECT_DOUBLE_EQ(y[0], 3.0 / (5.0 + 1e-10));
  EXPECT_DOUBLE_EQ(y[1], 4.0 / (5.0 + 1e-10));
  EXPECT_EQ(y[3], 0.0);
  channel_unit_norm_backward(2, 3, 1e-10, x, norm, dy, dx);
  EXPECT_DOUBLE_EQ(dx[3], 2.0 / 1e-10);  // the zero pixel: dy/eps, finite
  // Along x itself only eps keeps a gradient: x·dx = (x·dy)·eps/(r + eps)².
  EXPECT_NEAR(3.0 * dx[0] + 4.0 * dx[1], 7.0 * 1e-10 / 25.0, 1e-15);  // cancellation of ~0.2s
}

TEST(WeightedDistanceGrad, Matches) {
  Rng rng(29, 1);
  const int n = 2, c = 3;
  const int64_t hw = 4;
  const Vec b = random_vec(size_t(n) * hw * c, rng), w = random_vec(c, rng, 0.1, 1.0);
  GradCase cs;
  cs.inputs = {{"a", random_vec(size_t(n) * hw * c, rng), Grad::kWritten}};
  cs.output_sizes = {size_t(n)};
  cs.forward = [&](const std::vector<Vec>& in, std::vector<Vec>& out) {
    weighted_distance_accumulate(n, hw, c, in[0].data(), b.data(), w.data(), out[0].data());
  };
  cs.backward = [&](const std::vector<Vec>& in, const std::vector<Vec>& dout, std::vector<Vec>& g) {
    weighted_distance_backward(n, hw, c, in[0].data(), b.data(), w.data(), dout[0].data(), g[0].data());
  };
  check_gradients(cs);
  // The value: 1×1 conv of the squared difference, then the spatial mean; accumulated.
  const double a1[4] = {1.0, 0.0, 0.0, 2.0}, b1[4] = {0.0, 0.0, 0.0, 0.0}, w1[2] = {0.5, 2.0};
  double d1[1] = {10.0};
  weighted_distance_accumulate(1, 2, 2, a1, b1, w1, d1);
  EXPECT_DOUBLE_EQ(d1[0], 10.0 + (0.5 * 1.0 + 2.0 * 4.0) / 2.0);
}

// Training-mode BatchNorm as the layer runs it on one rank: sums → centred squares →
// normalise; backward: reduce → data, with count = rows.
void batch_norm_train_forward(const BatchNormDims& d, const Vec& x, const Vec& gamma, const Vec& beta,
                              Vec& y, Vec& mean, Vec& rstd) {
  Vec sum(d.c), sq(d.c);
  batch_norm_channel_sums(d, x.data(), sum.data());
  batch_norm_centered_squares(d, double(d.rows), x.data(), sum.data(), sq.data());
  batch_norm_normalize(d, double(d.rows), x.data(), sum.data(), sq.data(), gamma.data(), beta.data(), y.data(),
                       mean.data(), rstd.data());
}

TEST(BatchNormGrad, TrainingModeMatches) {
  BatchNormDims d;
  d.rows = 2 * 3 * 4, d.c = 3, d.eps = 1e-5;
  Rng rng(13, 2);
  GradCase c;
  c.inputs = {{"x", random_vec(size_t(d.rows) * d.c, rng, -1.0, 2.0), Grad::kWritten},
              {"gamma", random_vec(d.c, rng, 0.5, 1.5), Grad::kAccumulated},
              {"beta", random_vec(d.c, rng), Grad::kAccumulated}};
  c.output_sizes = {size_t(d.rows) * d.c};
  c.forward = [d](const std::vector<Vec>& in, std::vector<Vec>& out) {
    Vec mean(d.c), rstd(d.c);
    batch_norm_train_forward(d, in[0], in[1], in[2], out[0], mean, rstd);
  };
  c.backward = [d](const std::vector<Vec>& in, const std::vector<Vec>& dout, std::vector<Vec>& g) {
    Vec y(in[0].size()), mean(d.c), rstd(d.c), dsum(d.c), dsum_xhat(d.c);
    batch_norm_train_forward(d, in[0], in[1], in[2], y, mean, rstd);
    batch_norm_backward_reduce(d, in[0].data(), mean.data(), rstd.data(), dout[0].data(), dsum.data(),
                               dsum_xhat.data(), g[1].data(), g[2].data());
    batch_norm_backward_data(d, double(d.rows), in[0].data(), mean.data(), rstd.data(), in[1].data(),
                             dout[0].data(), dsum.data(), dsum_xhat.data(), g[0].data());
  };
  check_gradients(c);
}

// Forward, saved statistics, running-stat update (unbiased variance) and eval mode against
// PyTorch's formulas written out; enough rows for several reduction blocks.
TEST(BatchNormValue, MatchesNaive) {
  BatchNormDims d;
  d.rows = 2 * 17 * 19, d.c = 5, d.eps = 1e-5;
  Rng rng(13, 3);
  std::vector<float> x(size_t(d.rows) * d.c), gamma = random_floats(d.c, rng), beta = random_floats(d.c, rng);
  for (float& v : x) v = float(3.0 + 2.0 * rng.uniform(-1.0, 1.0));  // an offset stresses the variance
  std::vector<float> sum(d.c), sq(d.c), y(x.size()), mean(d.c), rstd(d.c);
  batch_norm_channel_sums(d, x.data(), sum.data());
  batch_norm_centered_squares(d, double(d.rows), x.data(), sum.data(), sq.data());
  batch_norm_normalize(d, double(d.rows), x.data(), sum.data(), sq.data(), gamma.data(), beta.data(), y.data(),
                       mean.data(), rstd.data());
  std::vector<float> running_mean(d.c, 0.25f), running_var(d.c, 2.0f);
  batch_norm_update_running(d.c, double(d.rows), 0.1, sum.data(), sq.data(), running_mean.data(), running_var.data());
  std::vector<float> y_eval(x.size());
  batch_norm_eval_forward(d, x.data(), running_mean.data(), running_var.data(), gamma.data(), beta.data(),
                          y_eval.data());

  Vec want_y(x.size()), want_mean(d.c), want_rstd(d.c), want_rm(d.c), want_rv(d.c), want_eval(x.size());
  for (int j = 0; j < d.c; ++j) {
    double s = 0, q = 0;
    for (int64_t r = 0; r < d.rows; ++r) s += x[r * d.c + j];
    const double mu = s / double(d.rows);
    for (int64_t r = 0; r < d.rows; ++r) q += (x[r * d.c + j] - mu) * (x[r * d.c + j] - mu);
    const double biased = q / double(d.rows), unbiased = q / double(d.rows - 1);
    want_mean[j] = mu, want_rstd[j] = 1.0 / std::sqrt(biased + d.eps);
    want_rm[j] = 0.9 * 0.25 + 0.1 * mu, want_rv[j] = 0.9 * 2.0 + 0.1 * unbiased;
    for (int64_t r = 0; r < d.rows; ++r) {
      const size_t i = size_t(r * d.c + j);
      want_y[i] = (x[i] - mu) * want_rstd[j] * gamma[j] + beta[j];
      want_eval[i] = (x[i] - want_rm[j]) / std::sqrt(want_rv[j] + d.eps) * gamma[j] + beta[j];
    }
  }
  EXPECT_LT(relative_max_error(y, want_y), 1e-6);
  EXPECT_LT(relative_max_error(mean, want_mean), 1e-6);
  EXPECT_LT(relative_max_error(rstd, want_rstd), 1e-6);
  EXPECT_LT(relative_max_error(running_mean, want_rm), 1e-6);
  EXPECT_LT(relative_max_error(running_var, want_rv), 1e-6);
  EXPECT_LT(relative_max_error(y_eval, want_eval), 1e-6);
}

// The synchronised-statistics design: two "ranks" holding halves of the rows, whose sums are
// added between the passes (what an all-reduce does), give the whole batch's outputs and
// input gradients; their dγ, dβ add up to the whole batch's.
TEST(BatchNormValue, SummedHalvesEqualTheWholeBatch) {
  BatchNormDims whole;
  whole.rows = 40, whole.c = 4;
  Rng rng(13, 4);
  const Vec x = random_vec(size_t(whole.rows) * whole.c, rng, -1.0, 3.0), dy = random_vec(x.size(), rng);
  const Vec gamma = random_vec(whole.c, rng, 0.5, 1.5), beta = random_vec(whole.c, rng);
  const int c = whole.c;
  const double count = double(whole.rows);
  Vec y(x.size()), mean(c), rstd(c), dsum(c), dsum_xhat(c), dgamma(c), dbeta(c), dx(x.size());
  batch_norm_train_forward(whole, x, gamma, beta, y, mean, rstd);
  batch_norm_backward_reduce(whole, x.data(), mean.data(), rstd.data(), dy.data(), dsum.data(), dsum_xhat.data(),
                             dgamma.data(), dbeta.data());
  batch_norm_backward_data(whole, count, x.data(), mean.data(), rstd.data(), gamma.data(), dy.data(), dsum.data(),
                           dsum_xhat.data(), dx.data());

  BatchNormDims half = whole;
  half.rows = whole.rows / 2;
  const size_t offset = size_t(half.rows) * c;
  auto add = [](const Vec& a, const Vec& b) {
    Vec s(a.size());
    for (size_t i = 0; i < a.size(); ++i) s[i] = a[i] + b[i];
    return s;
  };
  Vec sum[2] = {Vec(c), Vec(c)}, sq[2] = {Vec(c), Vec(c)};
  for (int k = 0; k < 2; ++k) batch_norm_channel_sums(half, x.data() + k * offset, sum[k].data());
  const Vec total_sum = add(sum[0], sum[1]);
  for (int k = 0; k < 2; ++k)
    batch_norm_centered_squares(half, count, x.data() + k * offset, total_sum.data(), sq[k].data());
  const Vec total_sq = add(sq[0], sq[1]);
  Vec y2(x.size()), mean2(c), rstd2(c), ds[2] = {Vec(c), Vec(c)}, dsx[2] = {Vec(c), Vec(c)}, dgamma2(c), dbeta2(c),
      dx2(x.size());
  for (int k = 0; k < 2; ++k)
    batch_norm_normalize(half, count, x.data() + k * offset, total_sum.data(), total_sq.data(), gamma.data(),
                         beta.data(), y2.data() + k * offset, mean2.data(), rstd2.data());
  for (int k = 0; k < 2; ++k)
    batch_norm_backward_reduce(half, x.data() + k * offset, mean2.data(), rstd2.data(), dy.data() + k * offset,
                               ds[k].data(), dsx[k].data(), dgamma2.data(), dbeta2.data());
  const Vec total_ds = add(ds[0], ds[1]), total_dsx = add(dsx[0], dsx[1]);
  for (int k = 0; k < 2; ++k)
    batch_norm_backward_data(half, count, x.data() + k * offset, mean2.data(), rstd2.data(), gamma.data(),
                             dy.data() + k * offset, total_ds.data(), total_dsx.data(), dx2.data() + k * offset);
  EXPECT_LT(relative_max_error(y2, y), 1e-13);
  EXPECT_LT(relative_max_error(dx2, dx), 1e-12);
  EXPECT_LT(relative_max_error(dgamma2, dgamma), 1e-13);
  EXPECT_LT(relative_max_error(dbeta2, dbeta), 1e-13);
}

// ---- determinism ------------------------------------------------------------------------------

// The OpenMP ops give the same bits with 1 thread and with more.
TEST(Determinism, ThreadCountIndependent) {
  GroupNormDims gd;
  gd.n = 2, gd.hw = 64 * 64, gd.c = 64, gd.groups = 8;
  const size_t size = size_t(gd.n) * gd.hw * gd.c;
  Rng rng(12, 1);
  const auto x = random_floats(size, rng), dy = random_floats(size, rng);
  const auto gamma = random_floats(gd.c, rng), beta = random_floats(gd.c, rng);
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> out(size * 3), mean(gd.n * gd.groups), rstd(mean.size());
    std::vector<float> dgamma(gd.c), dbeta(gd.c);
    group_norm_forward(gd, x.data(), gamma.data(), beta.data(), out.data(), mean.data(),
                       rstd.data());
    group_norm_backward(gd, x.data(), gamma.data(), mean.data(), rstd.data(), dy.data(),
                        out.data() + size, dgamma.data(), dbeta.data());
    silu_forward(int64_t(size), x.data(), out.data() + 2 * size);
    out.insert(out.end(), dgamma.begin(), dgamma.end());
    out.insert(out.end(), dbeta.begin(), dbeta.end());
    omp_set_num_threads(saved);
    return out;
  };
  const auto one = run(1), three = run(3);
  ASSERT_EQ(one.size(), three.size());
  EXPECT_TRUE(std::equal(one.begin(), one.end(), three.begin()));
}

}  // namespace
}  // namespace ladder::cpu
