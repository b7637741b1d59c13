// Why this file exists: the implementation of stage 2's TrainingTask.
#include "train/diffusion_task.h"

#include <algorithm>
#include <filesystem>

#include "core/check.h"
#include "core/log.h"
#include "diffusion/sampler.h"
#include "train/resume.h"

namespace ladder {

// DDPM: the stochastic sampler stays near the data distribution for a model early in training,
// where deterministic DDIM drifts (the quickstart's UNet after 900 steps: latent std 0.84 with
// DDPM at 100 steps, 2.8 with DDIM at 50 or 200, training latents 0.90).
constexpr int kSampleSteps = 100;

DiffusionTask::DiffusionTask(const Config& config, ParamStore& store, int gpu_index, int world)
    : config_(config), gpu_index_(gpu_index), device_(make_unet_device(config, store, gpu_index)) {
  LADDER_CHECK_USAGE(!config.data.store.empty(),
                     "config: data.store is required (a latent store made by ladder encode)");
  LADDER_CHECK_USAGE(io::is_latent_store(config.data.store), config.data.store,
                     ": not a latent store; model.kind = diffusion_unet trains on the latents that "
                     "ladder encode writes");
  store_ = std::make_unique<io::LatentStoreReader>(config.data.store);
  const io::LatentStoreInfo& info = store_->info();
  LADDER_CHECK_USAGE(info.latent_channels == config.model.in_channels, config.data.store, ": ",
                     info.latent_channels, " latent channels, but model.in_channels = ", config.model.in_channels);
  LADDER_CHECK_USAGE(info.count >= world, config.data.store, ": ", info.count, " images cannot feed ", world,
                     " ranks");
  const int unet_downsampling = 1 << (config.model.channels.size() - 1);
  for (int resolution : config.stages.resolutions) {
    LADDER_CHECK_USAGE(std::find(info.resolutions.begin(), info.resolutions.end(), resolution) !=
                           info.resolutions.end(),
                       config.data.store, ": no latents of images at resolution ", resolution,
                       " (stages.resolutions are image resolutions)");
    LADDER_CHECK_USAGE((resolution / info.downsampling) % unet_downsampling == 0, "config: latents of ",
                       resolution / info.downsampling, "x", resolution / info.downsampling,
                       " (image resolution ", resolution, ") do not divide by the UNet's ", unet_downsampling,
                       "x downsampling (model.channels)");
  }
  split_ = split_for_validation(config, info.count, world);
  if (split_.separate_store) {
    LADDER_CHECK_USAGE(io::is_latent_store(config.data.val_store), config.data.val_store,
                       ": not a latent store (data.val_store of a diffusion run: ladder encode its images)");
    val_store_ = std::make_unique<io::LatentStoreReader>(config.data.val_store);
    const io::LatentStoreInfo& val = val_store_->info();
    LADDER_CHECK_USAGE(val.latent_channels == info.latent_channels && val.downsampling == info.downsampling,
                       config.data.val_store, ": latents of another shape than data.store's");
    LADDER_CHECK_USAGE(val.count >= world, config.data.val_store, ": ", val.count, " images cannot feed ", world,
                       " ranks");
    for (int resolution : config.stages.resolutions)
      LADDER_CHECK_USAGE(std::find(val.resolutions.begin(), val.resolutions.end(), resolution) != val.resolutions.end(),
                         config.data.val_store, ": no latents of images at resolution ", resolution);
    if (val.scale_factor != info.scale_factor)
      log_warning(config.data.val_store, ": scale_factor ", val.scale_factor, " differs from data.store's ",
                  info.scale_factor, "; validation uses data.store's (the one the UNet learns)");
  }
  objective_ = std::make_unique<DiffusionObjective>(config.diffusion, info.scale_factor, config.run.seed);
}

data::ImageShard DiffusionTask::load_shard(int resolution, int rank, int world) {
  return store_->load_shard(resolution, rank, world, split_.training);
}

data::ImageShard DiffusionTask::load_validation_shard(int resolution, int rank, int world) {
  if (!split_.validates) return {};
  return (val_store_ ? *val_store_ : *store_).load_shard(resolution, rank, world, split_.validation);
}

std::vector<double> DiffusionTask::validate(const data::ImageShard& shard, int chunk) {
  std::vector<double> values(static_cast<size_t>(shard.count()), 0.0);  // (count, [val_loss])
  constexpr int kProbes = DiffusionObjective::kValidationProbes;
  TensorF prediction;
  for (int64_t first = 0; first < shard.count(); first += chunk) {
    const int64_t n = std::min<int64_t>(chunk, shard.count() - first);
    const Shape latents{n, shard.resolution, shard.resolution, config_.model.in_channels};
    const std::vector<int64_t> indices(shard.indices.begin() + first, shard.indices.begin() + first + n);
    const auto* records = reinterpret_cast<const float*>(shard.image(first));
    for (int probe = 0; probe < kProbes; ++probe) {
      objective_->prepare_validation(records, latents, indices, probe, batch_);
      device_->predict(batch_.x_t, batch_.timesteps, prediction);
      const int64_t per_image = latents.numel() / n;
      for (int64_t b = 0; b < n; ++b) {
        double squared = 0;
        for (int64_t e = b * per_image; e < (b + 1) * per_image; ++e) {
          const double diff = double(prediction[e]) - batch_.target[e];
          squared += diff * diff;
        }
        values[first + b] += batch_.weights[b] * squared / per_image / kProbes;
      }
    }
  }
  return values;
}

Shape DiffusionTask::batch_shape(int micro, int resolution) const {
  const int side = resolution / store_->info().downsampling;
  return {micro, side, side, config_.model.in_channels};
}

std::vector<double> DiffusionTask::micro_step(const data::MicroBatch& batch, const Shape& shape, int64_t step,
                                              const GradScales& scales) {
  objective_->prepare(batch.values.data(), shape, batch.indices, step, batch_);
  return {device_->micro_step(batch_.x_t.data(), batch_.target.data(), shape, batch_.timesteps, batch_.weights,
                              scales.model)};
}

bool DiffusionTask::can_make_images() {
  if (decoder_) return true;
  if (decoder_missing_) return false;
  const std::string& autoencoder = store_->info().autoencoder_checkpoint;
  std::error_code error;
  if (autoencoder.empty() || !std::filesystem::exists(autoencoder, error)) {
    log_warning("samples: the latent store's autoencoder '", autoencoder,
                "' is not there; no grids or evaluations (ladder sample --autoencoder decodes later)");
    decoder_missing_ = true;
    return false;
  }
  std::vector<std::string> flags = model_flags_of(autoencoder);
  flags.insert(flags.end(), {"--run.device", config_.run.device, "--train.precision", config_.train.precision});
  const Config decoder_config = load_config("", flags);
  decoder_ = make_loaded_autoencoder(decoder_config, decoder_params_, gpu_index_, autoencoder);
  return true;
}

TensorF DiffusionTask::make_images(const data::ImageShard& shard, int64_t held, int rank, int world, int chunk,
                                   ImagePurpose purpose) {
  LADDER_CHECK(can_make_images(), "make_images without the latent store's autoencoder");
  SamplerSettings settings;
  const bool grid = purpose == ImagePurpose::kGrid;
  settings.sampler = grid ? "ddpm" : config_.eval.sampler;
  settings.steps = std::min(grid ? kSampleSteps : config_.eval.steps, config_.diffusion.timesteps);
  settings.seed = config_.run.seed;
  settings.clip_sample = config_.diffusion.clip_sample;
  settings.chunk = chunk;
  for (int64_t k = 0; k < held; ++k) settings.indices.push_back(rank + k * world);
  const int64_t side = shard.resolution;  // the latents' side
  const int channels = config_.model.in_channels;
  TensorF images;
  if (held == 0) return images;
  const Samples samples =
      generate(objective_->schedule(), objective_->prediction(), {held, side, side, channels}, settings,
               [&](const TensorF& x, const std::vector<float>& t, TensorF& out) { device_->predict(x, t, out); });
  const double scale = store_->info().scale_factor;
  const int64_t per_latent = side * side * channels;
  TensorF part_in, part_out;
  for (int64_t first = 0; first < held; first += chunk) {  // decoded a chunk at a time
    const int64_t n = std::min<int64_t>(chunk, held - first);
    part_in.reshape_or_allocate({n, side, side, channels});
    for (int64_t e = 0; e < n * per_latent; ++e)
      part_in[e] = static_cast<float>(samples.latents[first * per_latent + e] / scale);
    decoder_->decode(part_in, part_out);
    if (first == 0) images.reshape_or_allocate({held, part_out.shape().h, part_out.shape().w, part_out.shape().c});
    const int64_t per_image = part_out.numel() / n;
    std::copy_n(part_out.data(), n * per_image, images.data() + first * per_image);
  }
  return images;
}

}  // namespace ladder
