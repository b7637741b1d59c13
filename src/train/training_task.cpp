// Why this file exists: the choice of TrainingTask from model.kind.
#include "train/training_task.h"

#include "core/check.h"
#include "train/autoencoder_task.h"
#include "train/diffusion_task.h"

namespace ladder {

std::unique_ptr<TrainingTask> make_training_task(const Config& config, ParamStore& store, int gpu_index,
                                                 int world) {
  if (config.model.kind == "diffusion_unet") return std::make_unique<DiffusionTask>(config, store, gpu_index, world);
  LADDER_CHECK_USAGE(config.model.kind == "autoencoder_kl", "config: model.kind = ", config.model.kind,
                     ": must be autoencoder_kl or diffusion_unet");
  return std::make_unique<AutoencoderTask>(config, store, gpu_index, world);
}

}  // namespace ladder
