// Why this file exists: the training loop of one rank, the same for both stages (what differs
// sits behind TrainingTask). It climbs the resolution ladder (BRIEF §1): per rung it loads
// the rank's share of the records (images or latents), then runs optimizer steps of
// `accumulation` micro-batches each, AdamW with warmup+cosine learning rate and global-norm
// clipping, and writes the run directory (config.ini, metrics.jsonl, samples/, checkpoints/).
// After every step the Checkpointer decides whether to save or stop; a resumed run starts
// from the checkpoint's step, rung, position in the rung and data cursor.
#pragma once

#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "comm/communicator.h"
#include "config/config.h"
#include "core/params.h"
#include "data/image_shard.h"
#include "data/prefetcher.h"
#include "io/tensorboard_writer.h"
#include "train/compute_device.h"
#include "train/training_task.h"
#include "train/weight_average.h"
#include "train/loss_scaler.h"
#include "train/adamw.h"
#include "train/optimizer_groups.h"
#include "train/gradient_sync.h"
#include "train/shard_layout.h"
#include "train/metrics.h"
#include "train/progress.h"
#include "train/checkpointer.h"
#include "train/training_evaluation.h"
#include "train/resume.h"

namespace ladder {

struct TrainSummary {
  int64_t steps = 0;  // the run's step count at the end (a resume's included)
  int64_t steps_this_run = 0;
  int64_t images_seen = 0;
  double first_loss = 0, last_loss = 0;
  std::map<std::string, double> first_terms, last_terms;  // the task's loss terms (rec_loss, ...)
  std::string first_sample, last_sample;                  // PNG paths
  SampleReport first_report, last_report;                 // their quality figures
  std::map<std::string, double> last_validation;          // val_* of the last validation
  std::map<std::string, double> last_evaluation;          // fid, kid_* ... of the last evaluation
  std::string evaluation_description;                     // its images, mode and network
  int stop_signal = 0;  // non-zero: stopped by this signal after committing a checkpoint
};

struct TrainOptions {
  std::string resume;  // "": a new run; "auto" or a checkpoint directory: --resume
};

class Trainer {
 public:
  // comm: the ranks to train over; null: all ranks of the job (comm.backend decides how).
  explicit Trainer(Config config, std::unique_ptr<Communicator> comm = nullptr,
                   TrainOptions options = {});
  ~Trainer();

  TrainSummary run();

  // The parameter values (downloaded from the GPU first when the model runs there).
  const ParamStore& params();
  Communicator& communicator() { return *comm_; }
  // What moves the gradient and parameter buffers: comm_ on CPU ranks; NCCL, or comm_ staged
  // through host memory, on GPU ranks.
  const Communicator& buffers_communicator() const {
    return buffers_comm_ ? *buffers_comm_ : *comm_;
  }
  const GradientSync& gradient_sync() const { return *sync_; }
  const Optimizer& optimizer() const { return *optimizer_; }
  const ComputeDevice& device() const { return *device_; }
  ComputeDevice& device() { return *device_; }
  TrainingTask& task() { return *task_; }
  // Called after every optimizer step with the step number (tests check replicas with it).
  void set_step_callback(std::function<void(int64_t)> callback) { step_callback_ = std::move(callback); }
  std::string metrics_path() const;

 private:
  // Trains `rung` from its step `first_step`; false when a stop signal ended the run.
  bool train_rung(int rung, int64_t first_step, TrainSummary& summary);
  void restore_training_state();  // from resumed_, after the optimizer exists
  io::TrainingState training_state(int rung, int64_t rung_step, int64_t data_batch) const;
  bool optimizer_step(double lr, double& grad_norm);  // false when skipped (non-finite grads)
  void log_memory_plan() const;
  // The sample grid of the rung's first images (rung_images in all), every rank making its own,
  // one image per pass (so that no image depends on which others share its batch).
  void write_sample(const data::ImageShard& shard, int64_t rung_images, const std::string& tag,
                    TrainSummary& summary);
  // The task's validation over every rank's share `shard`, one image per forward pass (so an
  // image's values never depend on which images share its batch, which differs with the world
  // size, nor on the kernels oneDNN or cuDNN pick for that batch), the values gathered into
  // image order and the means taken in that order: the same bits on any world size.
  std::vector<std::pair<std::string, double>> validate(const data::ImageShard& shard);

  Config config_;
  int rank_ = 0, world_ = 1;
  void make_buffers_communicator(bool injected_comm);
  // A rung's micro-batch and recompute. `auto` for either: on GPU ranks, the largest
  // micro-batch that fits (no recompute before recompute), found by probing; on the CPU, the
  // whole per-rank batch without recompute.
  struct RungPlan {
    int micro;
    std::string recompute;  // none | blocks
  };
  RungPlan plan_rung(int rung, const data::ImageShard& shard);
  // Whether a blank micro-batch of `micro` records runs forward and backward on every rank.
  bool fits_on_every_rank(const data::ImageShard& shard, const Shape& shape, bool recompute);
  // The task's micro-step; a device out-of-memory error becomes one line saying what to change.
  std::vector<double> run_micro_step(const data::MicroBatch& batch, const Shape& shape, const GradScales& grad_scale,
                                     int rung);
  void make_optimizer_groups();  // the model's, and the discriminator's when it has one

  std::unique_ptr<Communicator> comm_;  // host scalars, barriers; the buffers too on CPU ranks
  std::unique_ptr<Communicator> buffers_comm_;  // GPU ranks: NCCL, or comm_ staged via host
  ParamStore params_;
  std::unique_ptr<TrainingTask> task_;  // the stage: its model, data, loss and samples
  ComputeDevice* device_ = nullptr;     // task_'s
  std::unique_ptr<data::DataOrder> order_;  // which images each global batch trains on
  std::unique_ptr<std::ofstream> batch_trace_;  // LADDER_TEST_BATCH_TRACE (tests only)
  std::unique_ptr<ShardLayout> layout_;
  std::unique_ptr<GradientSync> sync_;
  std::unique_ptr<OptimizerGroups> optimizer_;
  std::unique_ptr<WeightAverage> average_;  // ema.decay > 0
  LossScaler scaler_{false};                // the model's
  LossScaler discriminator_scaler_{false};  // the discriminator's (stage 1, adversarial.weight > 0)
  std::string recompute_ = "none";  // the current rung's, after `auto` was decided
  std::function<void(int64_t)> step_callback_;
  int64_t fail_rank_ = -1, fail_step_ = -1;  // LADDER_TEST_FAIL=rank:step (tests only)
  // LADDER_TEST_SIGNAL=rank:step:signal (tests only): this rank raises `signal` after `step`.
  int64_t signal_step_ = -1;
  int signal_number_ = 0;
  std::unique_ptr<TrainingEvaluation> evaluation_;  // eval.count > 0
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<io::TensorBoardWriter> tensorboard_;  // rank 0, log.tensorboard
  Progress progress_{config_};
  bool redraw_progress_ = false;  // log.progress: redraw in place (a terminal) or plain lines
  std::unique_ptr<Checkpointer> checkpointer_;
  std::optional<Checkpoint> resumed_;  // the checkpoint this run continues
  int start_rung_ = 0;
  int64_t start_rung_step_ = 0;
  int64_t start_data_batch_ = -1;  // the resumed rung's data cursor (global batches); -1: none
  io::TrainingState last_state_;      // after the last step done (or the one resumed from)
  int64_t step_ = 0;
  int64_t images_seen_ = 0;
  int64_t skipped_steps_ = 0;
  double start_time_ = 0;
};

}  // namespace ladder
