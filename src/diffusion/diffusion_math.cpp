// Why this file exists: the forward-process, target, weighting and reverse-step formulas.
#include "diffusion/diffusion_math.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace ladder {
namespace {

// x0 and ε predicted from x_t and the model output (before clipping x0, as MONAI does).
void predicted_sample_and_noise(Prediction prediction, double alpha_bar, double out, double x_t,
                                double* x0, double* eps) {
  const double a = std::sqrt(alpha_bar), b = std::sqrt(1 - alpha_bar);
  switch (prediction) {
    case Prediction::kEpsilon:
      *eps = out;
      *x0 = (x_t - b * out) / a;
      break;
    case Prediction::kSample:
      *x0 = out;
      *eps = (x_t - a * out) / b;
      break;
    case Prediction::kVelocity:
      *x0 = a * x_t - b * out;
      *eps = a * out + b * x_t;
      break;
  }
}

}  // namespace

Prediction parse_prediction(const std::string& text) {
  if (text == "epsilon") return Prediction::kEpsilon;
  if (text == "v_prediction") return Prediction::kVelocity;
  if (text == "sample") return Prediction::kSample;
  throw UsageError("config: diffusion.prediction = '" + text + "': must be epsilon, v_prediction or sample");
}

void add_noise(const NoiseSchedule& schedule, int t, int64_t n, const float* x0, const float* noise,
               float* x_t) {
  const double a = std::sqrt(schedule.alpha_bar(t)), b = std::sqrt(1 - schedule.alpha_bar(t));
  for (int64_t i = 0; i < n; ++i) x_t[i] = static_cast<float>(a * x0[i] + b * noise[i]);
}

void prediction_target(const NoiseSchedule& schedule, Prediction prediction, int t, int64_t n,
                       const float* x0, const float* noise, float* target) {
  const double a = std::sqrt(schedule.alpha_bar(t)), b = std::sqrt(1 - schedule.alpha_bar(t));
  for (int64_t i = 0; i < n; ++i)
    target[i] = prediction == Prediction::kEpsilon  ? noise[i]
                : prediction == Prediction::kSample ? x0[i]
                                                    : static_cast<float>(a * noise[i] - b * x0[i]);
}

double min_snr_weight(const NoiseSchedule& schedule, Prediction prediction, int t, double gamma) {
  if (gamma <= 0) return 1;
  const double snr = schedule.snr(t), clipped = std::min(snr, gamma);
  switch (prediction) {
    case Prediction::kEpsilon: return clipped / snr;
    case Prediction::kVelocity: return clipped / (snr + 1);
    case Prediction::kSample: return clipped;
  }
  return 1;
}

std::vector<int> sampling_timesteps(int timesteps, int steps) {
  LADDER_CHECK_USAGE(steps >= 1 && steps <= timesteps, "sample: --steps ", steps, " must be in 1..",
                     timesteps, " (diffusion.timesteps)");
  const int stride = timesteps / steps;
  std::vector<int> visited;
  for (int k = 0; k < steps; ++k) visited.push_back(timesteps - 1 - k * stride);
  return visited;
}

void ddim_step(const NoiseSchedule& schedule, const StepSettings& s, int t, int t_prev, int64_t n,
               const float* model_output, const float* noise, float* x) {
  const double alpha_bar = schedule.alpha_bar(t), alpha_bar_prev = schedule.alpha_bar_or_one(t_prev);
  const double variance = (1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev);
  const double sigma = s.eta * std::sqrt(variance);
  for (int64_t i = 0; i < n; ++i) {
    double x0 = 0, eps = 0;
    predicted_sample_and_noise(s.prediction, alpha_bar, model_output[i], x[i], &x0, &eps);
    if (s.clip_sample) x0 = std::clamp(x0, -1.0, 1.0);
    double next = std::sqrt(alpha_bar_prev) * x0 + std::sqrt(1 - alpha_bar_prev - sigma * sigma) * eps;
    if (sigma > 0) next += sigma * noise[i];
    x[i] = static_cast<float>(next);
  }
}

void ddpm_step(const NoiseSchedule& schedule, const StepSettings& s, int t, int t_prev, int64_t n,
               const float* model_output, const float* noise, float* x) {
  const double alpha_bar = schedule.alpha_bar(t), alpha_bar_prev = schedule.alpha_bar_or_one(t_prev);
  const double beta = 1 - alpha_bar / alpha_bar_prev;  // the step's own β (β_t when t_prev = t−1)
  const double x0_coefficient = std::sqrt(alpha_bar_prev) * beta / (1 - alpha_bar);
  const double xt_coefficient = std::sqrt(1 - beta) * (1 - alpha_bar_prev) / (1 - alpha_bar);
  const double deviation = std::sqrt(std::max((1 - alpha_bar_prev) / (1 - alpha_bar) * beta, 1e-20));
  for (int64_t i = 0; i < n; ++i) {
    double x0 = 0, eps = 0;
    predicted_sample_and_noise(s.prediction, alpha_bar, model_output[i], x[i], &x0, &eps);
    if (s.clip_sample) x0 = std::clamp(x0, -1.0, 1.0);
    double next = x0_coefficient * x0 + xt_coefficient * x[i];
    if (t_prev >= 0) next += deviation * noise[i];
    x[i] = static_cast<float>(next);
  }
}

}  // namespace ladder
