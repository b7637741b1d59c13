// Why this file exists: the autoencoder's SSIM and MS-SSIM as MONAI computes them
// (monai.metrics.SSIMMetric and MultiScaleSSIMMetric, 2D, Gaussian window 11 with σ 1.5,
// k1 0.01, k2 0.03): local statistics by a 'valid' depthwise convolution with the window,
// the SSIM map averaged over channels and positions; MS-SSIM multiplies the contrast terms of
// 5 scales (2×2 average pooling between them) and the last scale's SSIM, each clamped at 0
// and raised to its weight. Per image, in double.
#pragma once

#include <cmath>

namespace ladder::eval {

struct SsimSettings {
  int window = 11;
  double sigma = 1.5;
  double k1 = 0.01, k2 = 0.03;
  double data_range = 1.0;  // images in [0, data_range]
};

// x, y (H, W, C) row-major. SSIM of the pair; NAN when the window does not fit.
double ssim(const double* x, const double* y, int h, int w, int c, const SsimSettings& settings = {});
// MS-SSIM with MONAI's 5 weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); NAN when the image
// is too small for them (MONAI's rule: a side // 16 must exceed window − 1, so 176 px and up).
double ms_ssim(const double* x, const double* y, int h, int w, int c, const SsimSettings& settings = {});

}  // namespace ladder::eval
