// Why this file exists: stage 2 as a TrainingTask: the diffusion UNet learning from a latent
// store (made once by ladder encode), the DDPM objective (diffusion/diffusion_objective.h)
// and its weighted MSE as the loss, and samples (grids: DDPM, 100 steps; evaluations: eval.sampler and
// eval.steps) decoded by the autoencoder the latent store names (when its checkpoint is still there).
#pragma once

#include <memory>

#include "diffusion/diffusion_objective.h"
#include "io/latent_store.h"
#include "train/training_task.h"

namespace ladder {

class DiffusionTask final : public TrainingTask {
 public:
  DiffusionTask(const Config& config, ParamStore& store, int gpu_index, int world);

  std::string model_name() const override { return "DiffusionModelUNet"; }
  ComputeDevice& device() override { return *device_; }
  data::ImageShard load_shard(int resolution, int rank, int world) override;
  Shape batch_shape(int micro, int resolution) const override;
  std::vector<std::string> loss_terms() const override { return {}; }
  // val_loss: the training loss (with its weights) averaged over kValidationProbes fixed
  // timesteps, with noise fixed per (probe, image).
  data::ImageShard load_validation_shard(int resolution, int rank, int world) override;
  std::vector<std::string> validation_terms() const override { return {"val_loss"}; }
  std::vector<double> validate(const data::ImageShard& shard, int chunk) override;
  std::vector<double> validation_values(const std::vector<double>& means) const override { return means; }
  std::vector<double> micro_step(const data::MicroBatch& batch, const Shape& shape, int64_t step,
                                 const GradScales& scales) override;
  TensorF make_images(const data::ImageShard& shard, int64_t held, int rank, int world, int chunk,
                      ImagePurpose purpose) override;
  // Loads the latent store's autoencoder at the first call; false when its checkpoint is gone.
  bool can_make_images() override;

 private:
  const Config& config_;
  int gpu_index_;
  std::unique_ptr<UNetDevice> device_;
  std::unique_ptr<io::LatentStoreReader> store_, val_store_;  // val_store_: data.val_store
  std::unique_ptr<DiffusionObjective> objective_;
  DenoisingBatch batch_;
  // The autoencoder that decodes samples (grids, evaluations), loaded at the first use.
  ParamStore decoder_params_;
  std::unique_ptr<AutoencoderDevice> decoder_;
  bool decoder_missing_ = false;
};

}  // namespace ladder
