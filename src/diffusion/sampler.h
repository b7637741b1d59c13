// Why this file exists: generation with a trained UNet, shared by `ladder sample` and the
// trainer's sample grids: initial noise x_T ~ N(0, 1) keyed by (seed, image), then the reverse
// steps of DDIM (η = 0) or DDPM over sampling_timesteps (diffusion/diffusion_math.h: one
// timestep convention for every step count; S = T with ddpm is the full DDPM chain), the UNet
// run `chunk` images at a time through `predict`.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "diffusion/diffusion_math.h"
#include "diffusion/noise_schedule.h"

namespace ladder {

struct SamplerSettings {
  std::string sampler = "ddim";  // ddim | ddpm
  int steps = 50;
  uint64_t seed = 0;
  int64_t chunk = 8;  // images per UNet forward
  // The index of each image to generate, which keys its noise (empty: 0 .. N − 1). Ranks that
  // share a set generate their own images' indices and get the images one process would.
  std::vector<int64_t> indices;
  bool clip_sample = true;  // clamp the predicted x0 to [−1, 1] (diffusion.clip_sample)
};

struct Samples {
  TensorF noise;               // x_T (N, h, w, C)
  TensorF latents;             // x_0 after the last step (N, h, w, C), in the scaled latent space
  std::vector<int> timesteps;  // the visited t, in order
};

// The model's output for x (n, h, w, C) at timesteps (n), into out.
using Predictor = std::function<void(const TensorF& x, const std::vector<float>& timesteps, TensorF& out)>;

// x_T ~ N(0, 1) of shape `latents`, image b's keyed by (seed, indices[b]) (indices empty: b).
TensorF initial_noise(const Shape& latents, uint64_t seed, const std::vector<int64_t>& indices);

// latents: the shape to generate. UsageError for an unknown sampler or a bad step count.
Samples generate(const NoiseSchedule& schedule, Prediction prediction, const Shape& latents,
                 const SamplerSettings& settings, const Predictor& predict);

// Tiles images (N, H, W, C) in [−1, 1] into rows of `columns` (white where the last row is
// short) and writes the PNG.
void write_sample_grid(const std::string& path, const TensorF& images, int64_t columns = 8);

}  // namespace ladder
