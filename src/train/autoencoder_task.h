// Why this file exists: stage 1 as a TrainingTask: the KL autoencoder learning from the image
// store, L1 reconstruction + kl_weight × KL (the terms rec_loss and kl_loss), the latent
// noise of image i at step s keyed by (seed, s, i), reconstruction grids with their PSNR, and
// validation as the mean L1 and the PSNR of reconstructions with z = μ (val_l1, val_psnr).
#pragma once

#include <memory>

#include "io/image_store.h"
#include "train/training_task.h"

namespace ladder {

class AutoencoderTask final : public TrainingTask {
 public:
  AutoencoderTask(const Config& config, ParamStore& store, int gpu_index, int world);

  std::string model_name() const override {
    return config_.adversarial.enabled() ? "AutoencoderKL and its PatchDiscriminator" : "AutoencoderKL";
  }
  ComputeDevice& device() override { return *device_; }
  data::ImageShard load_shard(int resolution, int rank, int world) override;
  Shape batch_shape(int micro, int resolution) const override;
  std::vector<std::string> loss_terms() const override;
  data::ImageShard load_validation_shard(int resolution, int rank, int world) override;
  std::vector<std::string> validation_terms() const override { return {"val_l1", "val_psnr"}; }
  std::vector<double> validate(const data::ImageShard& shard, int chunk) override;
  std::vector<double> validation_values(const std::vector<double>& means) const override;
  std::vector<double> micro_step(const data::MicroBatch& batch, const Shape& shape, int64_t step,
                                 const GradScales& scales) override;
  bool trains_discriminator(int64_t step) const override {
    return config_.adversarial.enabled() && step >= config_.adversarial.start_step;
  }
  TensorF make_images(const data::ImageShard& shard, int64_t held, int rank, int world, int chunk,
                      ImagePurpose purpose) override;
  bool reconstructs() const override { return true; }

 private:
  const Config& config_;
  std::unique_ptr<AutoencoderDevice> device_;
  std::unique_ptr<io::ImageStoreReader> store_, val_store_;  // val_store_: data.val_store
  TensorF noise_;  // (micro, R/d, R/d, latent)
};

}  // namespace ladder
