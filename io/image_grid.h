// Why this file exists: the way a person sees what the autoencoder does. `samples/` and
// `ladder reconstruct` write one PNG with originals above reconstructions (BRIEF §5), and
// report PSNR. Both work on model-range tensors: NHWC float, values in [-1, 1].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/intensity.h"

namespace ladder::io {

// Pixels between tiles, filled white.
constexpr int kGridGap = 2;

// Writes one PNG in which rows[r] (N, H, W, C) is row r of N tiles, kGridGap pixels apart:
// (rows * H + (rows - 1) * gap) x (N * W + (N - 1) * gap) pixels. All tensors must have the
// same shape. C = 3 is written as RGB, C = 1 as gray, any other C as gray from channel 0.
// Throws ladder::Error naming the path on failure.
void write_image_grid(const std::string& path, const std::vector<const TensorF*>& rows);

// Peak signal-to-noise ratio in dB between two equal-shape tensors in the model range
// (peak-to-peak 2): 10 log10(4 / MSE). Identical tensors give +infinity.
double psnr(const TensorF& a, const TensorF& b);

}  // namespace ladder::io
