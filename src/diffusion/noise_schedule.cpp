// Why this file exists: the three noise schedules.
#include "diffusion/noise_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace ladder {

NoiseSchedule::NoiseSchedule(const ScheduleSettings& s) {
  const int T = s.timesteps;
  LADDER_CHECK_USAGE(T >= 2, "config: diffusion.timesteps = ", T, " must be at least 2");
  auto linspace = [T](double a, double b, int k) { return a + (b - a) * k / (T - 1); };
  betas_.resize(static_cast<size_t>(T));
  if (s.kind == "linear_beta" || s.kind == "scaled_linear_beta") {
    LADDER_CHECK_USAGE(0 < s.beta_start && s.beta_start <= s.beta_end && s.beta_end < 1,
                       "config: diffusion.beta_start = ", s.beta_start, " and beta_end = ", s.beta_end,
                       " must satisfy 0 < start <= end < 1");
    for (int k = 0; k < T; ++k)
      betas_[k] = s.kind == "linear_beta"
                      ? linspace(s.beta_start, s.beta_end, k)
                      : std::pow(linspace(std::sqrt(s.beta_start), std::sqrt(s.beta_end), k), 2);
  } else if (s.kind == "cosine") {
    // ᾱ'(x) = cos(((x / T) + s) / (1 + s) · π/2)², x = 0..T; β_t = 1 − ᾱ'(t+1)/ᾱ'(t), ≤ 0.999.
    constexpr double kOffset = 8e-3, kPi = 3.14159265358979323846;
    auto f = [&](int x) {
      const double c = std::cos((static_cast<double>(x) / T + kOffset) / (1 + kOffset) * kPi / 2);
      return c * c;
    };
    for (int t = 0; t < T; ++t) betas_[t] = std::clamp(1.0 - f(t + 1) / f(t), 0.0, 0.999);
  } else {
    throw UsageError("config: diffusion.schedule = '" + s.kind +
                     "': must be linear_beta, scaled_linear_beta or cosine");
  }
  alpha_bars_.resize(betas_.size());
  double product = 1;
  for (int t = 0; t < T; ++t) alpha_bars_[t] = product *= 1.0 - betas_[t];
}

}  // namespace ladder
