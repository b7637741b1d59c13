// Why this file exists: the one interface between the trainer and the stage it trains. The
// trainer owns the loop (ZeRO, accumulation, the ladder, checkpoints, metrics); a task owns
// what differs between stages: the model on its device, the records it learns from, its loss
// and extra loss terms, and what a sample grid shows. AutoencoderTask (stage 1) and
// DiffusionTask (stage 2) implement it; make_training_task() picks one from model.kind.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "config/config.h"
#include "core/params.h"
#include "data/image_shard.h"
#include "data/prefetcher.h"
#include "train/compute_device.h"

namespace ladder {

struct SampleReport {
  std::string quality_name;  // e.g. "reconstruction PSNR"; empty: the grid only
  double quality = NAN;
  std::string unit;          // e.g. "dB"
};

// What images are made for: a sample grid (stage 2: DDPM, 100 steps) or an FID evaluation
// (stage 2: eval.sampler, eval.steps).
enum class ImagePurpose { kGrid, kEvaluation };

// Which images of data.store train, and which validate: none, the last data.val_images of
// data.store, or all of data.val_store.
struct DataSplit {
  data::ImageRange training;
  bool validates = false;
  bool separate_store = false;  // data.val_store
  data::ImageRange validation;  // of data.store, or of data.val_store
};

// The split for a data.store of `count` images (UsageError, naming the keys, when too few are
// left to train `world` ranks or to validate on them).
DataSplit split_for_validation(const Config& config, int64_t count, int world);

// What one micro-step's gradients are scaled by, per optimizer group (train/optimizer_groups.h):
// the group's loss scale (fp16; else 1) over the images of the optimizer step.
struct GradScales {
  double model = 0;
  double discriminator = 0;  // stage 1 with adversarial.weight > 0
};

class TrainingTask {
 public:
  virtual ~TrainingTask() = default;

  virtual std::string model_name() const = 0;  // for the log
  virtual ComputeDevice& device() = 0;

  // The rank's records of image resolution R (images i ≡ rank mod world: its partitions of the
  // data order, data/data_order.h), for the prefetcher.
  virtual data::ImageShard load_shard(int resolution, int rank, int world) = 0;
  // How many images the rungs train on (the data order's N; validation images left out).
  int64_t training_images() const { return split_.training.end - split_.training.begin; }
  // What `micro` records of image resolution R are to the model: images (micro, R, R, C) or
  // latents (micro, R/d, R/d, latent).
  virtual Shape batch_shape(int micro, int resolution) const = 0;

  // The metrics fields after `loss` (stage 1: rec_loss, kl_loss, and the perceptual and
  // adversarial terms when on).
  virtual std::vector<std::string> loss_terms() const = 0;
  // One micro-batch forward and backward, the gradients accumulated scaled by `scales`.
  // Returns the micro-batch's sums over its images of the loss, then of each loss term.
  // step: the optimizer steps done before this one (it keys the step's noise); batch: from the
  // prefetcher, read before this returns.
  virtual std::vector<double> micro_step(const data::MicroBatch& batch, const Shape& shape, int64_t step,
                                         const GradScales& scales) = 0;
  // Whether the step after `step` steps trains the discriminator (its optimizer group steps).
  virtual bool trains_discriminator(int64_t step) const {
    (void)step;
    return false;
  }

  // Validation (data.val_store, or the last data.val_images images of data.store, which
  // load_shard then leaves out). The rank's validation records of image resolution R (none
  // when the run has no validation), the metrics fields (val_*), each held record's values
  // ((count, fields) row-major; forward only, fixed noise, so they depend on the weights
  // alone), and the logged values from the fields' means over the whole validation set.
  virtual data::ImageShard load_validation_shard(int resolution, int rank, int world) = 0;
  virtual std::vector<std::string> validation_terms() const = 0;
  virtual std::vector<double> validate(const data::ImageShard& shard, int chunk) = 0;
  virtual std::vector<double> validation_values(const std::vector<double>& means) const = 0;
  bool has_validation() const { return split_.validates; }

  // The images a sample grid shows and an FID evaluation scores: those of the rung's first
  // images that this rank holds, global indices rank + k·world for k < held (the first `held`
  // records of `shard`), made `chunk` at a time, (held, R, R, C) in [−1, 1]. Stage 1: their
  // reconstructions (z = μ); stage 2: samples whose noise is keyed by (run.seed, index), so an
  // image is the same whichever rank makes it, decoded by the latent store's autoencoder.
  virtual TensorF make_images(const data::ImageShard& shard, int64_t held, int rank, int world, int chunk,
                              ImagePurpose purpose) = 0;
  // Whether make_images can run (stage 2 needs the latent store's autoencoder checkpoint).
  virtual bool can_make_images() { return true; }
  // Stage 1: the made images reconstruct the shard's images (grids show both; FID without a
  // reference scores against them).
  virtual bool reconstructs() const { return false; }

 protected:
  DataSplit split_;
};

// A collective: whether every rank can make images (stage 2's autoencoder may be missing on a node).
bool every_rank_can_make_images(TrainingTask& task, Communicator& comm);

// model.kind = autoencoder_kl → AutoencoderTask; diffusion_unet → DiffusionTask. The model
// registers its parameters in `store`; the data store is opened and checked against it and
// the rungs (UsageError naming the file).
std::unique_ptr<TrainingTask> make_training_task(const Config& config, ParamStore& store, int gpu_index,
                                                 int world);

}  // namespace ladder
