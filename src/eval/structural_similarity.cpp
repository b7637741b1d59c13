// Why this file exists: SSIM and MS-SSIM (eval/structural_similarity.h), MONAI's definitions
// written as plain loops in double.
#include "eval/structural_similarity.h"

#include <algorithm>
#include <vector>

namespace ladder::eval {
namespace {

struct SsimAndContrast {
  double ssim = NAN, contrast = NAN;  // means over channels and window positions
};

// MONAI's _gaussian_kernel: taps at (1 − k)/2 … (k − 1)/2, exp(−(d/σ)²/2), normalised.
std::vector<double> gaussian_1d(const SsimSettings& s) {
  std::vector<double> g(static_cast<size_t>(s.window));
  double sum = 0;
  for (int i = 0; i < s.window; ++i) {
    const double d = (1 - s.window) / 2.0 + i;
    g[i] = std::exp(-(d / s.sigma) * (d / s.sigma) / 2);
    sum += g[i];
  }
  for (double& v : g) v /= sum;
  return g;
}

SsimAndContrast ssim_and_contrast(const double* x, const double* y, int h, int w, int c, const SsimSettings& s) {
  const int oh = h - s.window + 1, ow = w - s.window + 1;
  if (oh < 1 || ow < 1) return {};
  const std::vector<double> g = gaussian_1d(s);
  const double c1 = (s.k1 * s.data_range) * (s.k1 * s.data_range), c2 = (s.k2 * s.data_range) * (s.k2 * s.data_range);
  double ssim_sum = 0, contrast_sum = 0;
  for (int ch = 0; ch < c; ++ch)
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        double mx = 0, my = 0, mxx = 0, myy = 0, mxy = 0;
        for (int a = 0; a < s.window; ++a)
          for (int b = 0; b < s.window; ++b) {
            const double weight = g[a] * g[b];
            const int64_t at = (int64_t(i + a) * w + (j + b)) * c + ch;
            mx += weight * x[at], my += weight * y[at];
            mxx += weight * x[at] * x[at], myy += weight * y[at] * y[at], mxy += weight * x[at] * y[at];
          }
        const double vx = mxx - mx * mx, vy = myy - my * my, cov = mxy - mx * my;
        const double contrast = (2 * cov + c2) / (vx + vy + c2);
        contrast_sum += contrast;
        ssim_sum += (2 * mx * my + c1) / (mx * mx + my * my + c1) * contrast;
      }
  const double positions = double(c) * oh * ow;
  return {ssim_sum / positions, contrast_sum / positions};
}

// (floor(H/2), floor(W/2), C): 2×2 averages, as avg_pool2d(kernel_size=2).
std::vector<double> halve(const std::vector<double>& x, int h, int w, int c) {
  const int oh = h / 2, ow = w / 2;
  std::vector<double> out(static_cast<size_t>(oh) * ow * c);
  for (int i = 0; i < oh; ++i)
    for (int j = 0; j < ow; ++j)
      for (int ch = 0; ch < c; ++ch) {
        auto at = [&](int a, int b) { return x[(int64_t(2 * i + a) * w + (2 * j + b)) * c + ch]; };
        out[(int64_t(i) * ow + j) * c + ch] = (at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1)) / 4;
      }
  return out;
}

}  // namespace

double ssim(const double* x, const double* y, int h, int w, int c, const SsimSettings& settings) {
  return ssim_and_contrast(x, y, h, w, c, settings).ssim;
}

double ms_ssim(const double* x, const double* y, int h, int w, int c, const SsimSettings& settings) {
  static const double kWeights[] = {0.0448, 0.2856, 0.3001, 0.2363, 0.1333};
  constexpr int kScales = 5, kDivisor = (kScales - 1) * (kScales - 1);  // MONAI's size rule
  if (h / kDivisor <= settings.window - 1 || w / kDivisor <= settings.window - 1) return NAN;
  std::vector<double> a(x, x + int64_t(h) * w * c), b(y, y + int64_t(h) * w * c);
  double product = 1;
  for (int scale = 0; scale < kScales; ++scale) {
    const SsimAndContrast s = ssim_and_contrast(a.data(), b.data(), h, w, c, settings);
    const double term = scale + 1 < kScales ? s.contrast : s.ssim;
    product *= std::pow(std::max(term, 0.0), kWeights[scale]);
    a = halve(a, h, w, c), b = halve(b, h, w, c);
    h /= 2, w /= 2;
  }
  return product;
}

}  // namespace ladder::eval
