// Why this file exists: dynamic loss scaling for train.precision = fp16 (BRIEF §3), with
// PyTorch GradScaler semantics: the loss is multiplied by scale() before the backward and the
// gradients divided by it before clipping and the optimizer. An optimizer step whose
// gradients are non-finite is skipped and the scale halved; after `growth_interval`
// consecutive clean steps the scale doubles. bf16 and fp32 need no scaling: a disabled
// scaler keeps the scale at 1, but it still answers "skip" for non-finite gradients (the
// trainer skips those in every precision) and counts them, so the trainer has one code path.
// The state goes into the checkpoint manifest, so a resumed run continues with the same scale.
#pragma once

#include <cstdint>

namespace ladder {

struct LossScalerState {
  double scale = 1;
  int64_t clean_steps = 0;  // consecutive clean steps since the last change of scale
  int64_t skipped = 0;      // optimizer steps skipped for non-finite gradients, whole run
};

class LossScaler {
 public:
  // The floor below which the scale never goes (see update() in loss_scaler.cpp).
  static constexpr double kMinScale = 1.0;

  explicit LossScaler(bool enabled, double initial = 65536, int64_t growth_interval = 2000,
                      double growth = 2, double backoff = 0.5);

  // Call once per optimizer step, after the gradients are reduced, with the same decision on
  // every rank (from the global gradient norm). Returns whether to apply the optimizer step.
  // The new scale applies to the next step's backward.
  bool update(bool grads_finite);

  bool enabled() const { return enabled_; }
  double scale() const { return scale_; }
  int64_t clean_steps() const { return clean_steps_; }
  int64_t skipped() const { return skipped_; }

  LossScalerState state() const { return {scale_, clean_steps_, skipped_}; }
  // Validates the state (throws ladder::Error naming the bad field). An enabled scaler takes
  // all of it; a disabled one takes only `skipped` (its scale stays 1).
  void restore(const LossScalerState& state);

 private:
  bool enabled_;
  int64_t growth_interval_;
  double growth_, backoff_;
  double scale_;
  int64_t clean_steps_ = 0;
  int64_t skipped_ = 0;
};

}  // namespace ladder
