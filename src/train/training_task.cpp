// Why this file exists: the choice of TrainingTask from model.kind.
#include "train/training_task.h"

#include "core/check.h"
#include "train/autoencoder_task.h"
#include "train/diffusion_task.h"

namespace ladder {

DataSplit split_for_validation(const Config& config, int64_t count, int world) {
  DataSplit split;
  split.training = {0, count};
  if (!config.data.val_store.empty()) {
    split.validates = true;
    split.separate_store = true;
    split.validation = {0, -1};
  } else if (config.data.val_images > 0) {
    const int64_t keep = count - config.data.val_images;
    LADDER_CHECK_USAGE(keep >= world, "config: data.val_images = ", config.data.val_images, " leaves ", keep,
                       " of the ", count, " images of ", config.data.store, " to train ", world, " ranks");
    LADDER_CHECK_USAGE(config.data.val_images >= world, "config: data.val_images = ", config.data.val_images,
                       " is fewer than the ", world, " ranks that validate");
    split.validates = true;
    split.training = {0, keep};
    split.validation = {keep, count};
  }
  return split;
}

bool every_rank_can_make_images(TrainingTask& task, Communicator& comm) {
  double unable = task.can_make_images() ? 0 : 1;
  comm.all_reduce_sum(&unable, 1, DType::kF64);
  return unable == 0;
}

std::unique_ptr<TrainingTask> make_training_task(const Config& config, ParamStore& store, int gpu_index,
                                                 int world) {
  if (config.model.kind == "diffusion_unet") return std::make_unique<DiffusionTask>(config, store, gpu_index, world);
  LADDER_CHECK_USAGE(config.model.kind == "autoencoder_kl", "config: model.kind = ", config.model.kind,
                     ": must be autoencoder_kl or diffusion_unet");
  return std::make_unique<AutoencoderTask>(config, store, gpu_index, world);
}

}  // namespace ladder
