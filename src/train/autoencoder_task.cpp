// Why this file exists: the implementation of stage 1's TrainingTask.
#include "train/autoencoder_task.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/rng.h"
#include "io/image_grid.h"

namespace ladder {

AutoencoderTask::AutoencoderTask(const Config& config, ParamStore& store, int gpu_index, int world)
    : config_(config), device_(make_autoencoder_device(config, store, gpu_index)) {
  LADDER_CHECK_USAGE(!config.data.store.empty(),
                     "config: data.store is required (an image store made by ladder pack)");
  store_ = std::make_unique<io::ImageStoreReader>(config.data.store, config.data.dataset, config.data.layout);
  const io::StoreInfo& info = store_->info();
  LADDER_CHECK_USAGE(info.channels == config.model.in_channels, config.data.store, ": ", info.channels,
                     "-channel images, but model.in_channels = ", config.model.in_channels);
  LADDER_CHECK_USAGE(info.count >= world, config.data.store, ": ", info.count, " images cannot feed ", world,
                     " ranks");
  for (int resolution : config.stages.resolutions)
    LADDER_CHECK_USAGE(store_->has_resolution(resolution), config.data.store, ": no images at resolution ",
                       resolution, " (stages.resolutions)");
  split_ = split_for_validation(config, info.count, world);
  if (split_.separate_store) {
    val_store_ = std::make_unique<io::ImageStoreReader>(config.data.val_store, config.data.dataset, config.data.layout);
    const io::StoreInfo& val = val_store_->info();
    LADDER_CHECK_USAGE(val.channels == info.channels, config.data.val_store, ": ", val.channels,
                       "-channel images, but data.store has ", info.channels);
    LADDER_CHECK_USAGE(val.count >= world, config.data.val_store, ": ", val.count, " images cannot feed ", world,
                       " ranks");
    for (int resolution : config.stages.resolutions)
      LADDER_CHECK_USAGE(val_store_->has_resolution(resolution), config.data.val_store,
                         ": no images at resolution ", resolution, " (stages.resolutions)");
  }
}

data::ImageShard AutoencoderTask::load_shard(int resolution, int rank, int world) {
  return store_->load_shard(resolution, rank, world, split_.training, data::parse_intensity(config_.data.intensity));
}

data::ImageShard AutoencoderTask::load_validation_shard(int resolution, int rank, int world) {
  if (!split_.validates) return {};
  return (val_store_ ? *val_store_ : *store_)
      .load_shard(resolution, rank, world, split_.validation, data::parse_intensity(config_.data.intensity));
}

std::vector<double> AutoencoderTask::validate(const data::ImageShard& shard, int chunk) {
  std::vector<double> values;  // (count, [mean |x − x̂|, mean (x − x̂)²])
  TensorF images, reconstruction;
  for (int64_t first = 0; first < shard.count(); first += chunk) {
    const int64_t n = std::min<int64_t>(chunk, shard.count() - first);
    data::images_to_tensor(shard, first, n, images);
    device_->reconstruct(images, reconstruction);
    const int64_t per_image = images.numel() / n;
    for (int64_t b = 0; b < n; ++b) {
      double absolute = 0, squared = 0;
      for (int64_t e = b * per_image; e < (b + 1) * per_image; ++e) {
        const double diff = double(reconstruction[e]) - images[e];
        absolute += std::abs(diff);
        squared += diff * diff;
      }
      values.insert(values.end(), {absolute / per_image, squared / per_image});
    }
  }
  return values;
}

std::vector<double> AutoencoderTask::validation_values(const std::vector<double>& means) const {
  return {means.at(0), 10.0 * std::log10(4.0 / means.at(1))};  // PSNR over the whole set, peak-to-peak 2
}

Shape AutoencoderTask::batch_shape(int micro, int resolution) const {
  return {micro, resolution, resolution, config_.model.in_channels};
}

std::vector<std::string> AutoencoderTask::loss_terms() const {
  std::vector<std::string> names = {"rec_loss", "kl_loss"};
  if (config_.perceptual.enabled()) names.push_back("p_loss");
  // The generator's adversarial term; the discriminator's loss and its mean logits on the
  // images and on their reconstructions (0 until adversarial.start_step).
  if (config_.adversarial.enabled()) names.insert(names.end(), {"g_adv_loss", "d_loss", "d_real", "d_fake"});
  return names;
}

std::vector<double> AutoencoderTask::micro_step(const data::MicroBatch& batch, const Shape& shape,
                                                int64_t step, const GradScales& scales) {
  // ε of image i at step s comes from stream (s, i): the same whatever the micro-batch split,
  // rank or world size.
  const Shape latent = device_->latent_shape(shape);
  noise_.reshape_or_allocate(latent);
  const int64_t per_image = latent.h * latent.w * latent.c;
  for (int64_t b = 0; b < latent.n; ++b) {
    Rng rng(config_.run.seed ^ 0x6e6f697365ull,
            splitmix64(static_cast<uint64_t>(step)) ^ static_cast<uint64_t>(batch.indices[b]));
    for (int64_t i = 0; i < per_image; ++i) noise_[b * per_image + i] = static_cast<float>(rng.normal());
  }
  AutoencoderObjective objective;
  objective.grad_scale = scales.model;
  objective.kl_weight = config_.train.kl_weight;
  objective.adversarial = trains_discriminator(step);
  objective.discriminator_grad_scale = scales.discriminator;
  const AutoencoderLossSums sums = device_->micro_step(batch.values.data(), shape, noise_.data(), objective);
  // sums.terms: the perceptual term (when on), then the adversarial one (when it ran).
  std::vector<double> out = {sums.reconstruction + objective.kl_weight * sums.kl, sums.reconstruction, sums.kl};
  size_t term = 0;
  if (config_.perceptual.enabled()) {
    out[0] += config_.perceptual.weight * sums.terms.at(term);
    out.push_back(sums.terms.at(term++));
  }
  if (config_.adversarial.enabled()) {
    const double adversarial = objective.adversarial ? sums.terms.at(term++) : 0.0;
    out[0] += config_.adversarial.weight * adversarial;
    const DiscriminatorSums& d = sums.discriminator;
    out.insert(out.end(), {adversarial, d.loss, d.logits_real, d.logits_fake});
  }
  return out;
}

TensorF AutoencoderTask::make_images(const data::ImageShard& shard, int64_t held, int rank, int world, int chunk,
                                     ImagePurpose purpose) {
  (void)rank, (void)world, (void)purpose;  // a reconstruction depends on its image alone
  TensorF reconstruction({held, shard.resolution, shard.resolution, shard.channels}), part_in, part_out;
  const int64_t per_image = reconstruction.numel() / std::max<int64_t>(held, 1);
  for (int64_t first = 0; first < held; first += chunk) {
    const int64_t n = std::min<int64_t>(chunk, held - first);
    data::images_to_tensor(shard, first, n, part_in);
    device_->reconstruct(part_in, part_out);
    std::copy(part_out.data(), part_out.data() + n * per_image, reconstruction.data() + first * per_image);
  }
  return reconstruction;
}

}  // namespace ladder
