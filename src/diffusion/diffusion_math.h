// Why this file exists: the arithmetic of stage 2 on flat float arrays, shared by the
// training objective and the samplers (shared/reference/monai-diffusion-unet.md §2):
//   forward process   x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε;  targets ε | v = √ᾱ_t·ε − √(1−ᾱ_t)·x0 | x0
//   Min-SNR-γ weight  min(snr, γ)/snr (ε), min(snr, γ)/(snr + 1) (v), min(snr, γ) (x0)
//   reverse steps     DDIM (any η) and DDPM (fixed_small variance) from t to t_prev.
// Timestep convention (ours, stated in docs/ARCHITECTURE.md): N sampling steps visit
// t_k = T−1 − k·⌊T/N⌋, k = 0..N−1, and each step goes to the NEXT visited timestep
// (ᾱ = 1 after the last). MONAI's DDIM steps by the same stride ⌊T/N⌋ but visits
// round(linspace(T−1, 0, N)), so its list and its steps disagree by up to one; its DDPM with
// N < T always steps to t−1. Here list and steps agree for every N, and N = T is MONAI's
// DDPM exactly. Arithmetic in double on float data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "diffusion/noise_schedule.h"

namespace ladder {

enum class Prediction { kEpsilon, kVelocity, kSample };
// "epsilon" | "v_prediction" | "sample"; UsageError naming diffusion.prediction otherwise.
Prediction parse_prediction(const std::string& text);

// x_t (n) from x0 and ε at timestep t.
void add_noise(const NoiseSchedule& schedule, int t, int64_t n, const float* x0, const float* noise,
               float* x_t);
// What the model learns to predict (n).
void prediction_target(const NoiseSchedule& schedule, Prediction prediction, int t, int64_t n,
                       const float* x0, const float* noise, float* target);
// The per-image loss weight of Min-SNR-γ; 1 when gamma = 0 (off).
double min_snr_weight(const NoiseSchedule& schedule, Prediction prediction, int t, double gamma);

// The timesteps N sampling steps visit, in order.
std::vector<int> sampling_timesteps(int timesteps, int steps);

struct StepSettings {
  Prediction prediction = Prediction::kEpsilon;
  bool clip_sample = true;  // clamp the predicted x0 to [−1, 1] (MONAI's default)
  double eta = 0;           // DDIM only: 0 is deterministic
};

// One reverse step, x (n) from x_t to x_{t_prev} in place, given the model's output at t.
// noise: N(0, 1) values (n) for the stochastic part (DDPM when t_prev ≥ 0; DDIM when η > 0),
// else unused (may be null).
void ddim_step(const NoiseSchedule& schedule, const StepSettings& settings, int t, int t_prev,
               int64_t n, const float* model_output, const float* noise, float* x);
void ddpm_step(const NoiseSchedule& schedule, const StepSettings& settings, int t, int t_prev,
               int64_t n, const float* model_output, const float* noise, float* x);

}  // namespace ladder
