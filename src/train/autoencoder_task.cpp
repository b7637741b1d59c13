// Why this file exists: the implementation of stage 1's TrainingTask.
#include "train/autoencoder_task.h"

#include <algorithm>

#include "core/check.h"
#include "core/rng.h"
#include "io/image_grid.h"

namespace ladder {

AutoencoderTask::AutoencoderTask(const Config& config, ParamStore& store, int gpu_index, int world)
    : config_(config), device_(make_autoencoder_device(config, store, gpu_index)) {
  LADDER_CHECK_USAGE(!config.data.store.empty(),
                     "config: data.store is required (an image store made by ladder pack)");
  store_ = std::make_unique<io::ImageStoreReader>(config.data.store, config.data.dataset);
  const io::StoreInfo& info = store_->info();
  LADDER_CHECK_USAGE(info.channels == config.model.in_channels, config.data.store, ": ", info.channels,
                     "-channel images, but model.in_channels = ", config.model.in_channels);
  LADDER_CHECK_USAGE(info.count >= world, config.data.store, ": ", info.count, " images cannot feed ", world,
                     " ranks");
  for (int resolution : config.stages.resolutions)
    LADDER_CHECK_USAGE(store_->has_resolution(resolution), config.data.store, ": no images at resolution ",
                       resolution, " (stages.resolutions)");
}

data::ImageShard AutoencoderTask::load_shard(int resolution, int rank, int world) {
  return store_->load_shard(resolution, rank, world);
}

Shape AutoencoderTask::batch_shape(int micro, int resolution) const {
  return {micro, resolution, resolution, config_.model.in_channels};
}

std::vector<double> AutoencoderTask::micro_step(const data::MicroBatch& batch, const Shape& shape,
                                                int64_t step, double grad_scale) {
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
  const double kl_weight = config_.train.kl_weight;
  const AutoencoderLossSums sums = device_->micro_step(batch.pixels.data(), shape, noise_.data(), grad_scale,
                                                       kl_weight);
  return {sums.reconstruction + kl_weight * sums.kl, sums.reconstruction, sums.kl};
}

SampleReport AutoencoderTask::write_sample(const data::ImageShard& shard, const std::string& path, int chunk,
                                           bool write) {
  TensorF originals;
  const int64_t count = std::min<int64_t>(8, shard.count());
  data::images_to_tensor(shard, 0, count, originals);
  TensorF reconstruction(originals.shape()), part_in, part_out;
  const int64_t per_image = originals.numel() / count;
  for (int64_t first = 0; first < count; first += chunk) {
    const int64_t n = std::min<int64_t>(chunk, count - first);
    data::images_to_tensor(shard, first, n, part_in);
    device_->reconstruct(part_in, part_out);
    std::copy(part_out.data(), part_out.data() + n * per_image, reconstruction.data() + first * per_image);
  }
  if (write) io::write_image_grid(path, {&originals, &reconstruction});
  return {"reconstruction PSNR", io::psnr(originals, reconstruction), "dB"};
}

}  // namespace ladder
