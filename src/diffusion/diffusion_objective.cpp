// Why this file exists: the implementation of the stage-2 training objective's inputs.
#include "diffusion/diffusion_objective.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/rng.h"
#include "kernels/cpu/ops.h"

namespace ladder {

DiffusionObjective::DiffusionObjective(const DiffusionConfig& config, double scale_factor, uint64_t seed)
    : schedule_({config.schedule, config.timesteps, config.beta_start, config.beta_end}),
      prediction_(parse_prediction(config.prediction)),
      snr_gamma_(config.snr_gamma),
      noise_offset_(config.noise_offset),
      scale_factor_(scale_factor),
      seed_(seed) {
  LADDER_CHECK_USAGE(config.snr_gamma >= 0, "config: diffusion.snr_gamma = ", config.snr_gamma,
                     " must be >= 0 (0: off)");
  LADDER_CHECK_USAGE(config.noise_offset >= 0, "config: diffusion.noise_offset = ", config.noise_offset,
                     " must be >= 0 (0: off)");
  LADDER_CHECK(scale_factor > 0, "the latents' scale_factor must be > 0, got ", scale_factor);
}

void DiffusionObjective::resize(const Shape& latents, DenoisingBatch& out) const {
  out.x_t.reshape_or_allocate(latents);
  out.target.reshape_or_allocate(latents);
  out.timesteps.resize(static_cast<size_t>(latents.n));
  out.weights.resize(static_cast<size_t>(latents.n));
}

void DiffusionObjective::prepare_image(const float* record, const Shape& latents, int64_t b, int t, Rng& rng,
                                       std::vector<float>& z, std::vector<float>& noise,
                                       DenoisingBatch& out) const {
  const int channels = static_cast<int>(latents.c);
  const int64_t pixels = latents.h * latents.w, per_image = pixels * channels;
  z.resize(static_cast<size_t>(per_image));
  noise.resize(static_cast<size_t>(per_image));
  for (int64_t p = 0; p < pixels; ++p)
    for (int c = 0; c < channels; ++c) {  // z = μ + σ·ε_z, σ from the clamped log σ²
      const double mu = record[p * 2 * channels + c];
      const double logvar = std::clamp<double>(record[p * 2 * channels + channels + c], cpu::kLogvarMin,
                                               cpu::kLogvarMax);
      z[p * channels + c] = static_cast<float>((mu + std::exp(0.5 * logvar) * rng.normal()) * scale_factor_);
    }
  for (float& e : noise) e = static_cast<float>(rng.normal());
  if (noise_offset_ > 0)
    for (int c = 0; c < channels; ++c) {
      const double offset = noise_offset_ * rng.normal();
      for (int64_t p = 0; p < pixels; ++p) noise[p * channels + c] += static_cast<float>(offset);
    }
  add_noise(schedule_, t, per_image, z.data(), noise.data(), out.x_t.data() + b * per_image);
  prediction_target(schedule_, prediction_, t, per_image, z.data(), noise.data(), out.target.data() + b * per_image);
  out.timesteps[b] = static_cast<float>(t);
  out.weights[b] = static_cast<float>(min_snr_weight(schedule_, prediction_, t, snr_gamma_));
}

void DiffusionObjective::prepare(const float* records, const Shape& latents, const std::vector<int64_t>& indices,
                                 int64_t step, DenoisingBatch& out) const {
  LADDER_CHECK(static_cast<int64_t>(indices.size()) == latents.n, "diffusion objective: ", indices.size(),
               " indices for ", latents.str());
  resize(latents, out);
  const int64_t per_record = latents.h * latents.w * latents.c * 2;
  std::vector<float> z, noise;
  for (int64_t b = 0; b < latents.n; ++b) {
    Rng rng(seed_ ^ 0x64696666ull, splitmix64(static_cast<uint64_t>(step)) ^ static_cast<uint64_t>(indices[b]));
    const int t = static_cast<int>(rng.below(static_cast<uint64_t>(schedule_.timesteps())));
    prepare_image(records + b * per_record, latents, b, t, rng, z, noise, out);
  }
}

void DiffusionObjective::prepare_validation(const float* records, const Shape& latents,
                                            const std::vector<int64_t>& indices, int probe,
                                            DenoisingBatch& out) const {
  LADDER_CHECK(static_cast<int64_t>(indices.size()) == latents.n && probe >= 0 && probe < kValidationProbes,
               "diffusion validation: ", indices.size(), " indices for ", latents.str(), ", probe ", probe);
  resize(latents, out);
  const int t = (2 * probe + 1) * schedule_.timesteps() / (2 * kValidationProbes);
  const int64_t per_record = latents.h * latents.w * latents.c * 2;
  std::vector<float> z, noise;
  for (int64_t b = 0; b < latents.n; ++b) {
    Rng rng(seed_ ^ 0x76616c6964ull, splitmix64(static_cast<uint64_t>(probe)) ^ static_cast<uint64_t>(indices[b]));
    prepare_image(records + b * per_record, latents, b, t, rng, z, noise, out);
  }
}

}  // namespace ladder
