// Why this file exists: one flat buffer that holds two models trained side by side — stage 1's
// autoencoder (offsets below a boundary) and its PatchGAN discriminator (from the boundary on,
// model/autoencoder_critics.h) — is sharded, reduced, gathered and checkpointed as one, but
// each model is a group of its own for the optimizer: its own AdamW (settings, moments, step
// count), learning rate, gradient norm and clip, and loss scaler, as MONAI's tutorial keeps an
// optimizer_g and an optimizer_d. OptimizerGroups cuts the rank's optimizer ranges at the
// boundary and holds one Optimizer per group; as an Optimizer itself (what the checkpointer
// and resume see) it holds the moments of every owned range, each in its group's optimizer.
// Without a discriminator there is one group, the whole buffer.
#pragma once

#include <memory>
#include <vector>

#include "core/params.h"
#include "train/adamw.h"

namespace ladder {

// A group's share of the optimizer ranges, and where its gradients sit in their concatenation.
struct GroupSlice {
  std::vector<Range> ranges;
  int64_t grad_offset = 0;  // into the concatenated gradients of all the ranges
  int64_t count = 0;
};

// `ranges` (ascending, as GradientSync::optimizer_ranges() gives them) cut at `boundaries`
// (ascending flat offsets): group g holds [boundary g−1, boundary g), the last group the rest.
std::vector<GroupSlice> slice_groups(const std::vector<Range>& ranges, const std::vector<int64_t>& boundaries);

class OptimizerGroups final : public Optimizer {
 public:
  // owned: the rank's optimizer ranges; boundaries as for slice_groups(); one optimizer per
  // group, each over its slice's ranges (the device's make_optimizer).
  OptimizerGroups(std::vector<Range> owned, const std::vector<int64_t>& boundaries,
                  std::vector<std::unique_ptr<Optimizer>> optimizers);

  int groups() const { return static_cast<int>(optimizers_.size()); }
  Optimizer& group(int g) { return *optimizers_.at(static_cast<size_t>(g)); }
  const GroupSlice& slice(int g) const { return slices_.at(static_cast<size_t>(g)); }

  // Every group at `lr` (the trainer steps the groups one by one with their own rates).
  void step(float* params, const float* grads, double lr) override;
  void reset() override;
  int64_t owned_count() const override;
  int64_t steps() const override { return optimizers_.front()->steps(); }  // the first group's
  int64_t state_bytes() const override;
  const std::vector<Range>& owned_ranges() const override { return owned_; }
  void download_moments(const std::vector<Range>& ranges, float* exp_avg, float* exp_avg_sq) const override;
  void upload_moments(const std::vector<Range>& ranges, const float* exp_avg, const float* exp_avg_sq) override;
  void set_steps(int64_t steps) override { optimizers_.front()->set_steps(steps); }  // the first group's

 private:
  // `range` cut into the groups' pieces: (group, piece) in ascending order.
  std::vector<std::pair<int, Range>> pieces(const Range& range) const;

  std::vector<Range> owned_;
  std::vector<GroupSlice> slices_;
  std::vector<int64_t> group_begin_;  // flat offset where each group starts (0, then the boundaries)
  std::vector<std::unique_ptr<Optimizer>> optimizers_;
};

}  // namespace ladder
