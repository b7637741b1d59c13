// Why this file exists: the progress line's arithmetic and format.
#include "train/progress.h"

#include <cmath>
#include <cstdio>

#include "core/format.h"

namespace ladder {

Progress::Progress(const Config& config) : config_(config) {
  for (int rung = 0; rung < config.stages.rungs(); ++rung) {
    rung_steps_.push_back((config.stages.images[rung] + config.train.batch - 1) / config.train.batch);
    total_steps_ += rung_steps_.back();
  }
}

std::string Progress::duration(double seconds) { return duration_text(seconds); }

std::string Progress::line(const ProgressPoint& p) const {
  const int resolution = config_.stages.resolutions[p.rung];
  const double batch = static_cast<double>(config_.train.batch);
  const double seconds_per_image = p.img_per_s > 0 ? 1.0 / p.img_per_s : NAN;
  const double rung_left = static_cast<double>(rung_steps_[p.rung] - p.rung_step) * batch * seconds_per_image;
  double run_left = rung_left;
  for (int rung = p.rung + 1; rung < config_.stages.rungs(); ++rung) {
    const double pixels = std::pow(static_cast<double>(config_.stages.resolutions[rung]) / resolution, 2);
    run_left += static_cast<double>(rung_steps_[rung]) * batch * seconds_per_image * pixels;
  }
  std::string memory = human_bytes(p.mem_peak_bytes);
  if (p.memory_capacity > 0) {
    char share[32];
    std::snprintf(share, sizeof share, " (%.0f%% of the GPU)", 100.0 * p.mem_peak_bytes / p.memory_capacity);
    memory += share;
  }
  std::string terms;  // " (rec_loss 0.12345, kl_loss 12.3)"
  for (const auto& [name, value] : p.loss_terms) {
    char term[96];
    std::snprintf(term, sizeof term, "%s%s %.5g", terms.empty() ? " (" : ", ", name.c_str(), value);
    terms += term;
  }
  if (!terms.empty()) terms += ")";
  for (const auto& [name, value] : p.evaluation) {  // the scores: " | fid 12.3 | kid 0.0123±0.0011"
    char term[96] = "";
    if (name == "fid") std::snprintf(term, sizeof term, " | fid %.5g", value);
    if (name == "kid_mean") std::snprintf(term, sizeof term, " | kid %.5g", value);
    if (name == "kid_std") std::snprintf(term, sizeof term, "±%.2g", value);
    terms += term;
  }
  for (const auto& [name, value] : p.validation) {
    char term[96];
    std::snprintf(term, sizeof term, " | %s %.5g", name.c_str(), value);
    terms += term;
  }
  char text[640];
  std::snprintf(text, sizeof text,
                "step %lld/%lld | rung %d/%d %dx%d step %lld/%lld | loss %.5f%s | lr %.3g | "
                "grad %.3g | %.1f img/s | ETA rung %s, run %s (estimate) | mem %s | data wait %.2f%% | comm %.1f%%",
                static_cast<long long>(p.step), static_cast<long long>(total_steps_), p.rung + 1,
                config_.stages.rungs(), resolution, resolution, static_cast<long long>(p.rung_step),
                static_cast<long long>(rung_steps_[p.rung]), p.loss, terms.c_str(), p.lr, p.grad_norm,
                p.img_per_s, duration(rung_left).c_str(), duration(run_left).c_str(), memory.c_str(),
                100.0 * p.data_wait_frac, 100.0 * p.comm_frac);
  return text;
}

}  // namespace ladder
