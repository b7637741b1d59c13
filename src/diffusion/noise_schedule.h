// Why this file exists: the DDPM forward process of stage 2 (BRIEF §4b; MONAI's schedules,
// shared/reference/monai-diffusion-unet.md §2.1): β_t for t = 0..T−1 from `linear_beta`,
// `scaled_linear_beta` or `cosine`, ᾱ_t = Π(1 − β), and the quantities the objective and the
// samplers read from them. Computed in double (MONAI uses fp32; the difference is below
// 1e-6 relative for T = 1000).
#pragma once

#include <string>
#include <vector>

namespace ladder {

struct ScheduleSettings {
  std::string kind = "linear_beta";  // linear_beta | scaled_linear_beta | cosine
  int timesteps = 1000;              // T
  double beta_start = 1e-4, beta_end = 2e-2;  // not used by cosine
};

class NoiseSchedule {
 public:
  // Throws UsageError naming diffusion.schedule or diffusion.timesteps for bad settings.
  explicit NoiseSchedule(const ScheduleSettings& settings);

  int timesteps() const { return static_cast<int>(betas_.size()); }
  double beta(int t) const { return betas_.at(t); }
  double alpha_bar(int t) const { return alpha_bars_.at(t); }
  // ᾱ at a sampler's previous timestep: 1 before the first (t < 0, "set_alpha_to_one").
  double alpha_bar_or_one(int t) const { return t < 0 ? 1.0 : alpha_bar(t); }
  // Signal-to-noise ratio ᾱ / (1 − ᾱ) (Min-SNR weighting).
  double snr(int t) const { return alpha_bar(t) / (1.0 - alpha_bar(t)); }

 private:
  std::vector<double> betas_, alpha_bars_;
};

}  // namespace ladder
