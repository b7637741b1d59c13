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
#include "core/rng.h"
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

  // The validation inputs: the same for every step, so values compare across a run and its
  // resumes. Probe p of kValidationProbes uses t = (2p + 1)·T / (2·kValidationProbes) and draws
  // from the stream keyed by (seed, p, image).
  static constexpr int kValidationProbes = 4;
  void prepare_validation(const float* records, const Shape& latents, const std::vector<int64_t>& indices,
                          int probe, DenoisingBatch& out) const;

  const NoiseSchedule& schedule() const { return schedule_; }
  Prediction prediction() const { return prediction_; }

 private:
  // Image b of `out` at timestep t from `record`, drawing z, ε and the offsets from `rng`;
  // z and noise: scratch of one image's latents (reused across the batch).
  void prepare_image(const float* record, const Shape& latents, int64_t b, int t, Rng& rng,
                     std::vector<float>& z, std::vector<float>& noise, DenoisingBatch& out) const;
  void resize(const Shape& latents, DenoisingBatch& out) const;

  NoiseSchedule schedule_;
  Prediction prediction_;
  double snr_gamma_, noise_offset_, scale_factor_;
  uint64_t seed_;
};

}  // namespace ladder
