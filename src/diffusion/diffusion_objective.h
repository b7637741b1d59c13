// Why this file exists: what stage 2 trains on, made on the host from a micro-batch of latent
// records (BRIEF §4b; shared/reference/monai-diffusion-unet.md §2): per image a fresh
// z = (μ + σ·ε_z) · scale_factor, a timestep t uniform in [0, T), noise ε (plus
// noise_offset × one N(0, 1) value per channel, "offset noise"), x_t = √ᾱ_t·z + √(1−ᾱ_t)·ε,
// the target of diffusion.prediction and the Min-SNR-γ weight. Every draw of image i at
// optimizer step s comes from the stream keyed by (seed, s, i), so neither the micro-batch
// split, the rank nor the world size changes the math.
#pragma once

#include <cstdint>
#include <vector>

#include "config/config.h"
#include "core/tensor.h"
#include "diffusion/diffusion_math.h"
#include "diffusion/noise_schedule.h"

namespace ladder {

struct DenoisingBatch {
  TensorF x_t, target;             // (N, h, w, C)
  std::vector<float> timesteps;    // (N)
  std::vector<float> weights;      // (N): Min-SNR-γ, 1 when off
};

class DiffusionObjective {
 public:
  // Throws UsageError naming the diffusion key at fault.
  DiffusionObjective(const DiffusionConfig& config, double scale_factor, uint64_t seed);

  // records: float (N, h, w, 2C), per pixel μ then log σ² (data/image_shard.h); indices: the
  // images' global indices (N); step: the optimizer step being made.
  void prepare(const float* records, const Shape& latents /* (N, h, w, C) */,
               const std::vector<int64_t>& indices, int64_t step, DenoisingBatch& out) const;

  const NoiseSchedule& schedule() const { return schedule_; }
  Prediction prediction() const { return prediction_; }

 private:
  NoiseSchedule schedule_;
  Prediction prediction_;
  double snr_gamma_, noise_offset_, scale_factor_;
  uint64_t seed_;
};

}  // namespace ladder
