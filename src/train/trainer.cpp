// Why this file exists: the implementation of the rank's training loop.
#include "train/trainer.h"

#include <algorithm>
#include <csignal>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "comm/image_order.h"
#include "comm/mpi_session.h"
#include "core/clock.h"
#include "core/context.h"
#include "core/log.h"
#include "core/rng.h"
#include "data/prefetcher.h"
#include "io/image_grid.h"
#include "kernels/cpu/onednn_conv.h"
#include "train/oom_message.h"
#include "train/stop_signals.h"
#ifdef LADDER_WITH_CUDA
#include "comm/staged_communicator.h"
#include "kernels/cuda/device_memory.h"
#endif
#include "train/lr_schedule.h"
#include "train/memory_plan.h"
#include "model/autoencoder_critics.h"

namespace fs = std::filesystem;

namespace ladder {
namespace {

// A probed micro-batch fits when its peak stays within this share of the GPU's memory.
constexpr double kProbeHeadroom = 0.95;
// Images per validation forward pass (Trainer::validate): one, so that no image's values
// depend on the world size.
constexpr int kValidationChunk = 1;
// Images in a sample grid: one row (stage 1: the originals above their reconstructions).
constexpr int64_t kGridImages = 8;

void write_text_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text;
    LADDER_CHECK(out.good(), "cannot write ", temporary);
  }
  fs::rename(temporary, path);
}

// "fid 12.3, kid_mean 0.0123 ± 0.0012, 3.4 s"
std::string format_scores(const std::vector<std::pair<std::string, double>>& scores) {
  std::map<std::string, double> by_name(scores.begin(), scores.end());
  std::string text = detail::concat("fid ", by_name["fid"]);
  if (by_name.count("kid_mean")) text += detail::concat(", kid ", by_name["kid_mean"], " ± ", by_name["kid_std"]);
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, ", %.1f s", by_name["eval_seconds"]);
  return text + seconds;
}

std::string step_tag(int64_t step, int resolution) {
  char tag[64];
  std::snprintf(tag, sizeof tag, "step-%08lld-r%d", static_cast<long long>(step), resolution);
  return tag;
}

}  // namespace

Trainer::Trainer(Config config, std::unique_ptr<Communicator> comm, TrainOptions options)
    : config_(std::move(config)), comm_(std::move(comm)) {
  const bool injected_comm = comm_ != nullptr;
  if (!comm_) {
    CommSettings comm_settings;
    comm_settings.backend = "mpi";  // host scalars; GPU buffers get their own (below)
    comm_settings.timeout_s = config_.comm.timeout_s;
    comm_ = make_communicator(comm_settings);
  }
  rank_ = comm_->rank();
  world_ = comm_->world();
  // auto: redraw only on an interactive terminal of a lone process (a rank under mpirun writes
  // through mpirun's forwarding, which is no terminal even when it ends on one).
  redraw_progress_ = config_.log.progress == "redraw" ||
                     (config_.log.progress == "auto" && world_ == 1 && stdout_is_terminal() &&
                      std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr && std::getenv("PMI_SIZE") == nullptr);
  for (int rung = 0; rung < config_.stages.rungs(); ++rung)
    micro_batch_for_rung(config_, rung, world_);  // validates batch / (micro × world)
  if (const char* trigger = std::getenv("LADDER_TEST_FAIL")) {  // "rank:step", tests only
    long long rank = -1, step = -1;
    LADDER_CHECK_USAGE(std::sscanf(trigger, "%lld:%lld", &rank, &step) == 2,
                       "LADDER_TEST_FAIL must be rank:step, got '", trigger, "'");
    fail_rank_ = rank;
    fail_step_ = step;
  }
  if (const char* trace = std::getenv("LADDER_TEST_BATCH_TRACE")) {  // "PREFIX", tests only: PREFIX.rankR
    batch_trace_ = std::make_unique<std::ofstream>(detail::concat(trace, ".rank", rank_), std::ios::app);
    LADDER_CHECK_USAGE(batch_trace_->good(), "LADDER_TEST_BATCH_TRACE: cannot write ", trace, ".rank", rank_);
  }
  if (const char* trigger = std::getenv("LADDER_TEST_SIGNAL")) {  // "rank:step:signal", tests only
    long long rank = -1, step = -1, signal = 0;
    LADDER_CHECK_USAGE(std::sscanf(trigger, "%lld:%lld:%lld", &rank, &step, &signal) == 3,
                       "LADDER_TEST_SIGNAL must be rank:step:signal, got '", trigger, "'");
    if (rank == rank_) {
      signal_step_ = step;
      signal_number_ = static_cast<int>(signal);
    }
  }

  // The model (registering its parameters), its device and its data store, checked.
  task_ = make_training_task(config_, params_, MpiSession::node_local_rank(), world_);
  device_ = &task_->device();
  order_ = std::make_unique<data::DataOrder>(task_->training_images(), config_.data.partitions, config_.train.batch);
  order_->check_world(world_);
  LADDER_CHECK_USAGE(device_->on_gpu() || config_.comm.backend != "nccl",
                     "comm.backend = nccl needs ranks that compute on GPUs (run.device = cuda)");

  const fs::path dir = config_.run.dir;
  const bool resuming = !options.resume.empty();
  LADDER_CHECK_USAGE(resuming || !fs::exists(dir / "metrics.jsonl"), "run.dir '", config_.run.dir,
                     "' already holds a run (metrics.jsonl); continue it with --resume auto or "
                     "choose a new run.dir");
  comm_->barrier();  // every rank has looked before rank 0 writes
  fs::create_directories(dir / "samples");
  const io::CheckpointDirectory checkpoints(config_.run.dir);
  if (rank_ == 0) checkpoints.remove_temporaries();  // what a killed run left half-written
  if (resuming) resumed_ = choose_checkpoint(options.resume, checkpoints, *comm_);

  const int64_t bucket_elements =
      std::max<int64_t>(1, static_cast<int64_t>(config_.train.bucket_mb * (1 << 20) / sizeof(float)));
  layout_ = std::make_unique<ShardLayout>(params_.count(), world_, bucket_elements);
  params_.allocate(layout_->padded_count());
  params_.initialize(config_.run.seed);  // the same on every rank: no broadcast needed
  if (resumed_) {
    check_same_model(*resumed_, config_, params_);
    load_master(*resumed_, params_);
    if (!config_.train.init_from.empty())
      log_info("train.init_from is not used: the run continues from its checkpoint");
  } else if (!config_.train.init_from.empty()) {
    warm_start(config_.train.init_from, params_);
    const std::vector<ModelBuffer> buffers = warm_start_buffers(config_.train.init_from, device_->buffers());
    if (!buffers.empty()) device_->load_buffers(buffers);
    log_info("weights", buffers.empty() ? "" : " and BatchNorm running statistics", " from ",
             config_.train.init_from, " (train.init_from), fresh optimizer state");
  }
  device_->attach_parameters(params_);
  make_buffers_communicator(injected_comm);
  sync_ = std::make_unique<GradientSync>(device_->memory(), *layout_, config_.train.zero_stage,
                                         buffers_comm_ ? *buffers_comm_ : *comm_, *comm_);
  device_->set_backward_observer(sync_.get());
  scaler_ = LossScaler(device_->precision() == "fp16");
  discriminator_scaler_ = LossScaler(device_->precision() == "fp16");
  make_optimizer_groups();
  if (config_.ema.decay > 0)  // over the ranges this rank saves (its owned slices at every stage)
    average_ = std::make_unique<WeightAverage>(device_->memory(), layout_->owned_ranges(rank_), config_.ema.decay);
  if (resumed_) restore_training_state();
  if (config_.eval.enabled()) evaluation_ = std::make_unique<TrainingEvaluation>(config_, device_->on_gpu());
  if (rank_ == 0) {
    write_text_atomically((dir / "config.ini").string(), config_.to_ini());
    if (resuming) {  // steps only increase: a new history from the checkpoint's step
      keep_metrics_through(metrics_path(), step_);
      for (const std::string& name : checkpoints.supersede_after(step_))
        log_warning("resume: ", name, " is from a later point of the previous history; kept aside, "
                    "never loaded");
    }
    metrics_ = std::make_unique<MetricsWriter>(metrics_path());
    if (config_.log.tensorboard) {
      tensorboard_ = std::make_unique<io::TensorBoardWriter>((dir / "tb").string());
      // TensorBoard drops the superseded steps of earlier event files from here on.
      if (resuming) tensorboard_->restart_at(step_ + 1);
      tensorboard_->text("config", step_, config_.to_ini());
    }
  }
  checkpointer_ = std::make_unique<Checkpointer>(config_, *comm_, params_, *layout_,
                                                 device_->memory(), *optimizer_, average_.get(),
                                                 device_->buffer_pinner(), [this] { return device_->buffers(); });

  log_info("model: ", task_->model_name(), ", ", params_.count(), " parameters");
  log_info(data::describe_order(*order_, world_));
  log_info("device: ", device_->name(), " (run.device = ", config_.run.device, "; oneDNN ISA ",
           cpu::onednn_isa(), "), precision ", device_->precision(), ", world ", world_, " over ",
           (buffers_comm_ ? *buffers_comm_ : *comm_).backend(), ", ZeRO stage ",
           config_.train.zero_stage);
  log_memory_plan();
}

void Trainer::make_optimizer_groups() {
  // The model's group, then (stage 1 with adversarial.weight > 0) the discriminator's, whose
  // parameters follow the model's in the flat buffer: AdamW without weight decay, as the
  // tutorial's torch.optim.Adam.
  std::vector<int64_t> boundaries;
  if (const int64_t boundary = discriminator_offset(params_); boundary < params_.count()) boundaries.push_back(boundary);
  const std::vector<Range> owned = sync_->optimizer_ranges();
  const std::vector<GroupSlice> slices = slice_groups(owned, boundaries);
  AdamWSettings model;
  model.beta1 = config_.train.beta1;
  model.beta2 = config_.train.beta2;
  model.weight_decay = config_.train.weight_decay;
  std::vector<std::unique_ptr<Optimizer>> optimizers;
  optimizers.push_back(device_->make_optimizer(params_, slices[0].ranges, model));
  if (!boundaries.empty()) {
    AdamWSettings discriminator;
    discriminator.beta1 = config_.adversarial.beta1;
    discriminator.beta2 = config_.adversarial.beta2;
    optimizers.push_back(device_->make_optimizer(params_, slices[1].ranges, discriminator));
  }
  optimizer_ = std::make_unique<OptimizerGroups>(owned, boundaries, std::move(optimizers));
}

void Trainer::restore_training_state() {
  const io::TrainingState& state = resumed_->manifest.state;
  last_state_ = state;
  LADDER_CHECK_USAGE(state.rung < config_.stages.rungs(), resumed_->dir, ": the checkpoint is in rung ",
                     state.rung, ", but stages.resolutions has ", config_.stages.rungs(), " rungs");
  load_moments(*resumed_, *optimizer_);
  if (average_ && !load_average(*resumed_, layout_->owned_ranges(rank_), *average_))
    log_info("resume: the checkpoint holds no moving average (ema.decay was 0); it starts from its weights");
  optimizer_->set_steps(state.optimizer_steps);
  scaler_.restore(state.scaler);
  if (optimizer_->groups() > 1) {
    LADDER_CHECK_USAGE(state.discriminator_steps >= 0, resumed_->dir,
                       ": the checkpoint holds no discriminator state (state.discriminator)");
    optimizer_->group(1).set_steps(state.discriminator_steps);
    discriminator_scaler_.restore(state.discriminator_scaler);
  }
  skipped_steps_ = state.scaler.skipped;
  step_ = state.step;
  images_seen_ = state.images_seen;
  start_rung_ = state.rung;
  start_rung_step_ = state.rung_step;
  // The data cursor is a global batch index, the same on every world size (data/data_order.h).
  // A checkpoint from before that order continues at the rung's step.
  start_data_batch_ = state.data_batch >= 0 ? state.data_batch : state.rung_step;
  // The model's buffers (BatchNorm's running statistics), which training never reads.
  const std::vector<ModelBuffer> ours = device_->buffers();
  const std::vector<ModelBuffer> buffers = saved_buffers(*resumed_, ours);
  if (!buffers.empty()) device_->load_buffers(buffers);
  else if (!ours.empty())
    log_info("resume: the checkpoint holds no BatchNorm running statistics (written before ladder kept them); "
             "they start at their reset values");
  const char* without_env = std::getenv("LADDER_TEST_RESTORE_WITHOUT");  // tests: a broken restore
  const std::string without = without_env != nullptr ? without_env : "";
  if (without == "data_cursor") start_data_batch_ = 0;
  if (without == "discriminator_steps" && optimizer_->groups() > 1) optimizer_->group(1).set_steps(0);
  if (without == "buffers" && !ours.empty()) device_->load_buffers(ours);  // back to the fresh values
  log_info("resume: from ", resumed_->dir, " (step ", step_, ", rung ", state.rung, " at step ",
           state.rung_step, ", ", images_seen_, " images seen; written by ",
           resumed_->manifest.world, " ranks at ZeRO stage ", resumed_->manifest.zero_stage, ")");
  std::string changes;
  for (const std::string& change : changes_since(resumed_->manifest, config_, world_))
    changes += (changes.empty() ? "" : ", ") + change;
  if (!changes.empty()) log_info("resume: changed since the checkpoint: ", changes);
}

io::TrainingState Trainer::training_state(int rung, int64_t rung_step, int64_t data_batch) const {
  io::TrainingState state;
  state.step = step_;
  state.images_seen = images_seen_;
  state.rung = rung;
  state.rung_step = rung_step;
  state.optimizer_steps = optimizer_->steps();
  state.scaler = scaler_.state();
  state.scaler.skipped = skipped_steps_;
  state.data_batch = data_batch;
  if (optimizer_->groups() > 1) {
    state.discriminator_steps = optimizer_->group(1).steps();
    state.discriminator_scaler = discriminator_scaler_.state();
  }
  return state;
}

void Trainer::make_buffers_communicator(bool injected_comm) {
  if (!device_->on_gpu()) return;  // CPU ranks move host buffers over comm_
#ifdef LADDER_WITH_CUDA
  if (!injected_comm && config_.comm.backend != "mpi") {
    CommSettings settings;
    settings.backend = config_.comm.backend;
    settings.timeout_s = config_.comm.timeout_s;
    settings.cuda_ranks = true;
    std::unique_ptr<Communicator> gpu_comm = make_communicator(settings);  // NCCL when it can
    if (gpu_comm->device_buffers() && gpu_comm->world() == world_) {
      buffers_comm_ = std::move(gpu_comm);
      return;
    }
  }
  // comm.backend = mpi, ranks sharing a GPU, or a communicator handed in (tests).
  buffers_comm_ = std::make_unique<StagedCommunicator>(*comm_);
#else
  (void)injected_comm;
#endif
}

const ParamStore& Trainer::params() {
  device_->download_parameters(params_);
  return params_;
}

void Trainer::log_memory_plan() const {
  const RankMemory plan = zero_rank_memory(params_.padded_count(), world_,
                                           config_.train.zero_stage, /*compute_bytes=*/4);
  auto mib = [](int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); };
  char line[320];
  std::snprintf(line, sizeof line,
                "bytes per rank: parameters %.2f MiB, gradients %.2f MiB (+ %.2f MiB working), "
                "master weights %.2f MiB, Adam moments %.2f MiB; allocated: moments %.2f MiB, "
                "gradient shard %.2f MiB",
                mib(plan.parameters), mib(plan.gradients), mib(plan.working_gradients),
                mib(plan.master_weights), mib(plan.moments), mib(optimizer_->state_bytes()),
                mib(sync_->gradient_shard_bytes()));
  log_info(line);
}

Trainer::~Trainer() = default;

std::string Trainer::metrics_path() const {
  return (fs::path(config_.run.dir) / "metrics.jsonl").string();
}

TrainSummary Trainer::run() {
  start_time_ = now_seconds();
  device_->reset_peak();  // mem_peak_bytes: this run's peak
  TrainSummary summary;
  bool stopped = false;
  for (int rung = start_rung_; rung < config_.stages.rungs() && !stopped; ++rung)
    stopped = !train_rung(rung, rung == start_rung_ ? start_rung_step_ : 0, summary);
  if (stopped)
    summary.stop_signal = ProcessContext::get().stop_signal();
  else
    checkpointer_->finish(last_state_);
  summary.steps = step_;
  summary.images_seen = images_seen_;
  return summary;
}

std::vector<std::pair<std::string, double>> Trainer::validate(const data::ImageShard& shard) {
  const std::vector<std::string> names = task_->validation_terms();
  const int64_t fields = static_cast<int64_t>(names.size());
  double total = static_cast<double>(shard.count());
  comm_->all_reduce_sum(&total, 1, DType::kF64);
  const int64_t count = static_cast<int64_t>(total);
  const std::vector<double> mine = task_->validate(shard, kValidationChunk);  // (held, fields)
  const std::vector<double> all = gather_in_image_order(*comm_, mine.data(), shard.count(), fields, count);
  std::vector<double> means(static_cast<size_t>(fields), 0.0);
  for (int64_t i = 0; i < count; ++i)
    for (int64_t f = 0; f < fields; ++f) means[f] += all[i * fields + f];
  for (double& mean : means) mean /= static_cast<double>(count);
  const std::vector<double> values = task_->validation_values(means);
  std::vector<std::pair<std::string, double>> out;
  for (int64_t f = 0; f < fields; ++f) out.emplace_back(names[f], values[f]);
  return out;
}

void Trainer::write_sample(const data::ImageShard& shard, int64_t rung_images, const std::string& tag,
                           TrainSummary& summary) {
  if (!every_rank_can_make_images(*task_, *comm_)) return;
  // The rung's first kGridImages images, each made by the rank that holds it, one per pass,
  // and gathered in image order: every rank works, and the grid is the same on any world size.
  const int64_t count = std::min(kGridImages, rung_images);
  const int64_t held = images_held(count, rank_, world_);
  const TensorF made = task_->make_images(shard, held, rank_, world_, 1, ImagePurpose::kGrid);
  double image_shape[3] = {0, 0, 0};  // rank 0 holds image 0
  if (rank_ == 0) image_shape[0] = made.shape().h, image_shape[1] = made.shape().w, image_shape[2] = made.shape().c;
  comm_->broadcast(image_shape, 3, DType::kF64, 0);
  const Shape grid_shape{count, static_cast<int64_t>(image_shape[0]), static_cast<int64_t>(image_shape[1]),
                         static_cast<int64_t>(image_shape[2])};
  const int64_t per_image = grid_shape.h * grid_shape.w * grid_shape.c;
  TensorF made_grid(grid_shape), original_grid;
  const std::vector<float> gathered = gather_in_image_order(*comm_, made.data(), held, per_image, count);
  std::copy(gathered.begin(), gathered.end(), made_grid.data());
  SampleReport report;
  if (task_->reconstructs()) {
    TensorF originals;
    if (held > 0) data::images_to_tensor(shard, 0, held, originals);
    original_grid.reshape_or_allocate(grid_shape);
    const std::vector<float> all = gather_in_image_order(*comm_, originals.data(), held, per_image, count);
    std::copy(all.begin(), all.end(), original_grid.data());
    report = {"reconstruction PSNR", io::psnr(original_grid, made_grid), "dB"};
  }
  const std::string path = (fs::path(config_.run.dir) / "samples" / (tag + ".png")).string();
  if (rank_ == 0) {
    std::vector<const TensorF*> rows;
    if (task_->reconstructs()) rows.push_back(&original_grid);
    rows.push_back(&made_grid);
    io::write_image_grid(path, rows);
    if (tensorboard_) {
      std::ifstream png(path, std::ios::binary);
      const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(png)), std::istreambuf_iterator<char>());
      tensorboard_->image("samples/" + std::to_string(shard.resolution), step_, bytes);
    }
  }
  if (summary.first_sample.empty()) {
    summary.first_sample = path;
    summary.first_report = report;
  }
  summary.last_sample = path;
  summary.last_report = report;
  if (report.quality_name.empty())
    log_info("sample ", path);
  else
    log_info("sample ", path, ": ", report.quality_name, " ", report.quality, " ", report.unit);
}

bool Trainer::optimizer_step(double lr, double& grad_norm) {
  sync_->end_step();
  const int groups = optimizer_->groups();
  std::vector<std::pair<int64_t, int64_t>> parts;
  for (int g = 0; g < groups; ++g) parts.emplace_back(optimizer_->slice(g).grad_offset, optimizer_->slice(g).count);
  const std::vector<double> squared = sync_->global_squared_norms(parts);
  // Under fp16 the gradients carry the loss scale: the norms are of the unscaled gradients.
  // The same decisions on every rank (the norms are global); a scaler halves on overflow.
  const double model_scale = scaler_.scale(), discriminator_scale = discriminator_scaler_.scale();
  grad_norm = std::sqrt(squared[0]) / model_scale;
  const bool model_steps = scaler_.update(std::isfinite(grad_norm));
  // The discriminator learns after adversarial.start_step only, unclipped (as the tutorial).
  bool discriminator_steps = false;
  if (groups > 1 && task_->trains_discriminator(step_))
    discriminator_steps = discriminator_scaler_.update(std::isfinite(std::sqrt(squared[1]) / discriminator_scale));
  if (!model_steps && !discriminator_steps) return false;

  FlatMemory& memory = device_->memory();
  float* grads = sync_->optimizer_grads();
  checkpointer_->wait_until_staged();  // a checkpoint in flight has its copy of the state
  if (model_steps) {
    const GroupSlice& slice = optimizer_->slice(0);
    const double clip = config_.train.grad_clip;
    double factor = 1.0 / model_scale;
    if (clip > 0 && grad_norm > clip) factor *= clip / (grad_norm + 1e-6);
    if (factor != 1.0) memory.scale(grads + slice.grad_offset, slice.count, static_cast<float>(factor));
    optimizer_->group(0).step(memory.values(), grads + slice.grad_offset, lr);
  }
  if (discriminator_steps) {
    const GroupSlice& slice = optimizer_->slice(1);
    if (discriminator_scale != 1.0)
      memory.scale(grads + slice.grad_offset, slice.count, static_cast<float>(1.0 / discriminator_scale));
    optimizer_->group(1).step(memory.values(), grads + slice.grad_offset, config_.adversarial.lr);
  }
  if (average_ && model_steps) average_->update();  // the owned values are final here; the gather brings the rest
  sync_->gather_parameters();
  device_->parameters_changed();
  return model_steps;
}

std::vector<double> Trainer::run_micro_step(const data::MicroBatch& batch, const Shape& shape,
                                            const GradScales& grad_scale, int rung) {
#ifdef LADDER_WITH_CUDA
  try {
    return task_->micro_step(batch, shape, step_, grad_scale);
  } catch (const cuda::DeviceOutOfMemory& e) {
    OutOfMemoryContext context;
    context.rung = rung;
    context.resolution = config_.stages.resolutions[rung];
    context.micro_batch = static_cast<int>(shape.n);
    context.recompute = recompute_;
    context.requested_bytes = e.requested_bytes();
    context.held_bytes = e.in_use_bytes();
    context.device_free_bytes = e.device_free_bytes();
    context.device_total_bytes = e.device_total_bytes();
    throw Error(out_of_memory_message(context));
  }
#else
  (void)rung;
  return task_->micro_step(batch, shape, step_, grad_scale);
#endif
}

bool Trainer::fits_on_every_rank(const data::ImageShard& shard, const Shape& shape, bool recompute) {
  double fits = 1;
#ifdef LADDER_WITH_CUDA
  // One forward and backward of a blank micro-batch (zeros: gray images, or latents of μ = 0,
  // σ = 1); its gradients are discarded.
  device_->set_backward_observer(nullptr);
  device_->set_recompute(recompute);
  data::MicroBatch blank;
  blank.values = HostBuffer<float>(shape.n * shard.image_values());
  std::fill(blank.values.data(), blank.values.data() + blank.values.size(), 0.0f);
  blank.indices.assign(static_cast<size_t>(shape.n), 0);
  device_->reset_peak();  // the probe's own peak
  try {
    task_->micro_step(blank, shape, step_, GradScales{});
    device_->memory().synchronize();
    // Headroom (an estimate) for what the probe does not allocate: the optimizer step's
    // kernels and scratch, NCCL's buffers (connected at the first collective), the CUDA
    // context beside ladder's allocator.
    if (static_cast<double>(device_->peak_bytes()) > kProbeHeadroom * static_cast<double>(device_->memory_capacity()))
      fits = 0;
  } catch (const Error& e) {
    if (!cuda::is_allocation_failure(e)) throw;
    fits = 0;
  }
  device_->set_recompute(true);  // frees what the probe kept in the blocks
  device_->memory().zero(device_->memory().grads(), layout_->padded_count());
  device_->set_backward_observer(sync_.get());
#else
  (void)shard;
  (void)shape;
  (void)recompute;
#endif
  comm_->all_reduce_sum(&fits, 1, DType::kF64);  // the same answer on every rank
  return fits == static_cast<double>(world_);
}

Trainer::RungPlan Trainer::plan_rung(int rung, const data::ImageShard& shard) {
  const std::string& recompute = config_.train.recompute[rung];
  const int per_rank = static_cast<int>(config_.train.batch / world_);
  const bool micro_auto = config_.train.micro_batch[rung] == 0;
  RungPlan plan{micro_batch_for_rung(config_, rung, world_), recompute == "blocks" ? "blocks" : "none"};
  // Host memory has no limit worth planning against: auto is the whole per-rank batch
  // without recompute on the CPU.
  if (!device_->on_gpu() || (!micro_auto && recompute != "auto")) return plan;
  // GPU: the largest micro-batch (a divisor of the per-rank batch, when auto) that fits on
  // every rank, without recompute before with it (when auto), by probing.
  std::vector<int> micros;
  for (int m = micro_auto ? per_rank : plan.micro; m >= 1; --m)
    if (per_rank % m == 0 && (micro_auto || m == plan.micro)) micros.push_back(m);
  std::vector<std::string> options;
  if (recompute != "blocks") options.push_back("none");
  if (recompute != "none") options.push_back("blocks");
  for (int m : micros)
    for (const std::string& option : options)
      if (fits_on_every_rank(shard, task_->batch_shape(m, config_.stages.resolutions[rung]), option == "blocks")) {
        log_info("rung ", rung, ": micro-batch ", m, ", recompute ", option, " (",
                 micro_auto ? "train.micro_batch = auto" : "train.recompute = auto",
                 ": the largest that fits on every rank)");
        device_->reset_peak();  // mem_peak_bytes leaves the probes out
        return {m, option};
      }
  // Nothing fits: train with the smallest and let the out-of-memory error say so.
  device_->reset_peak();
  return {micros.back(), options.back()};
}

bool Trainer::train_rung(int rung, int64_t first_step, TrainSummary& summary) {
  const int resolution = config_.stages.resolutions[rung];
  const int64_t batch = config_.train.batch;
  const int64_t steps = (config_.stages.images[rung] + batch - 1) / batch;
  const LrSchedule schedule(config_.train.lr, config_.train.warmup_images);
  const double rung_total = static_cast<double>(steps * batch);
  if (first_step >= steps) return true;  // a resume at the rung's end (or stages.images shrank)

  const double load_start = now_seconds();
  data::ImageShard shard = task_->load_shard(resolution, rank_, world_);
  const data::ImageShard validation = task_->load_validation_shard(resolution, rank_, world_);
  const double load_seconds = now_seconds() - load_start;
  double images_of_rung = static_cast<double>(shard.count());
  comm_->all_reduce_sum(&images_of_rung, 1, DType::kF64);
  const int64_t rung_images = static_cast<int64_t>(images_of_rung);
  const RungPlan plan = plan_rung(rung, shard);
  const int micro = plan.micro;
  const int accumulation = static_cast<int>(batch / world_ / micro);
  recompute_ = plan.recompute;
  log_info("rung ", rung, ": ", resolution, "x", resolution, ", ", shard.count(),
           shard.latents ? " latents" : " images", " held (", shard.pixels.bytes(), " bytes, loaded at ",
           static_cast<double>(shard.pixels.bytes()) / 1e9 / std::max(load_seconds, 1e-9),
           " GB/s); micro-batch ", micro, " x ", accumulation, " accumulation x ", world_,
           " ranks = batch ", batch, ", ", steps, " steps");
  data::PrefetchSettings prefetch;
  prefetch.micro_batch = micro;
  prefetch.depth = config_.data.prefetch;
  prefetch.threads = config_.data.loader_threads;
  prefetch.flip = config_.data.flip;
  prefetch.seed = config_.run.seed;
  prefetch.rank = rank_;
  prefetch.world = world_;
  prefetch.pin_buffers = device_->buffer_pinner();  // GPU: page-locked ring, DMA to the device
  // The data cursor: the global batch the rung continues at, on any world size.
  const bool saved_cursor = rung == start_rung_ && first_step > 0 && start_data_batch_ >= 0;
  prefetch.first_global_batch = saved_cursor ? start_data_batch_ : first_step;
  data::Prefetcher loader(shard, *order_, prefetch);
  const Shape batch_shape = task_->batch_shape(micro, resolution);
  device_->set_recompute(recompute_ == "blocks");
  if (first_step == 0) {
    if (rung > 0 && config_.stages.reset_optimizer[rung]) {
      checkpointer_->wait_until_staged();
      optimizer_->reset();
    }
    write_sample(shard, rung_images, step_tag(step_, resolution), summary);
  }

  const std::vector<std::string> term_names = task_->loss_terms();
  double interval_start = now_seconds(), interval_wait = 0;
  double interval_comm_start = sync_->comm_seconds();
  int64_t interval_images = 0;
  for (int64_t rung_step = first_step; rung_step < steps; ++rung_step) {
    if (rank_ == fail_rank_ && step_ + 1 == fail_step_)
      LADDER_FAIL("test-only failure trigger LADDER_TEST_FAIL at step ", step_ + 1);
    sync_->begin_step();
    std::vector<double> sums(1 + term_names.size(), 0.0);  // the loss, then the terms
    for (int micro_step = 0; micro_step < accumulation; ++micro_step) {
      sync_->begin_micro_step();
      const double wait_start = now_seconds();
      const data::MicroBatch& batch_data = loader.next();
      interval_wait += now_seconds() - wait_start;
      if (batch_trace_)  // "step slot image" per image: which images the step trains on
        for (size_t b = 0; b < batch_data.indices.size(); ++b)
          *batch_trace_ << step_ + 1 << ' ' << batch_data.slots[b] << ' ' << batch_data.indices[b] << '\n';
      const GradScales scales{scaler_.scale() / static_cast<double>(batch),
                              discriminator_scaler_.scale() / static_cast<double>(batch)};
      const std::vector<double> part = run_micro_step(batch_data, batch_shape, scales, rung);
      sync_->end_micro_step();
      for (size_t i = 0; i < sums.size(); ++i) sums[i] += part.at(i);
    }
    comm_->all_reduce_sum(sums.data(), static_cast<int64_t>(sums.size()), DType::kF64);  // the global batch
    const double lr = schedule.at(static_cast<double>(images_seen_),
                                  static_cast<double>(rung_step * batch), rung_total,
                                  static_cast<double>(batch), config_.stages.lr_scale[rung]);
    double grad_norm = 0;
    if (!optimizer_step(lr, grad_norm)) {
      ++skipped_steps_;
      log_warning("step ", step_ + 1, ": non-finite gradient norm, update skipped",
                  scaler_.enabled() ? detail::concat(" (loss scale now ", scaler_.scale(), ")")
                                    : std::string());
    }
    ++step_;
    images_seen_ += batch;
    if (step_ == signal_step_) std::raise(signal_number_);  // a real signal, from this rank
    if (step_callback_) step_callback_(step_);
    interval_images += batch;

    const double loss = sums[0] / static_cast<double>(batch);
    std::vector<std::pair<std::string, double>> terms;
    for (size_t i = 0; i < term_names.size(); ++i)
      terms.emplace_back(term_names[i], sums[i + 1] / static_cast<double>(batch));
    if (++summary.steps_this_run == 1) {  // the first step of this process (of a resume, too)
      summary.first_loss = loss;
      summary.first_terms = {terms.begin(), terms.end()};
    }
    summary.last_loss = loss;
    summary.last_terms = {terms.begin(), terms.end()};

    const bool last_step = rung_step + 1 == steps;
    const double judging_start = now_seconds();  // validation and evaluation: not training speed
    std::vector<std::pair<std::string, double>> validated;
    if (task_->has_validation() && (last_step || (config_.run.val_every > 0 && step_ % config_.run.val_every == 0))) {
      validated = validate(validation);
      summary.last_validation = {validated.begin(), validated.end()};
    }
    std::vector<std::pair<std::string, double>> evaluated;
    if (evaluation_ && evaluation_->due(step_, last_step)) {
      evaluated = evaluation_->run(*task_, shard, rung_images, resolution, *comm_);
      if (!evaluated.empty()) {
        summary.last_evaluation = {evaluated.begin(), evaluated.end()};
        summary.evaluation_description = evaluation_->description();
        log_info("evaluation at step ", step_, ": ", format_scores(evaluated), " (", evaluation_->description(), ")");
      }
    }
    interval_start += now_seconds() - judging_start;
    if (step_ % config_.run.log_every == 0 || last_step || !validated.empty() || !evaluated.empty()) {
      const double elapsed = now_seconds() - interval_start;
      StepMetrics m;
      m.step = step_;
      m.stage = rung;
      m.resolution = resolution;
      m.images_seen = images_seen_;
      m.loss = loss;
      m.loss_terms = terms;
      m.validation = validated;
      m.evaluation = evaluated;
      if (!evaluated.empty()) m.evaluation_labels = {{"eval_mode", evaluation_->mode()},
                                                     {"eval_network", evaluation_->network_description()}};
      m.lr = lr;
      m.grad_norm = grad_norm;
      m.img_per_s = elapsed > 0 ? static_cast<double>(interval_images) / elapsed : 0;
      m.data_wait_frac = elapsed > 0 ? interval_wait / elapsed : 0;
      m.comm_frac = elapsed > 0 ? (sync_->comm_seconds() - interval_comm_start) / elapsed : 0;
      m.mem_peak_bytes = device_->peak_bytes();
      m.skipped_steps = skipped_steps_;
      m.time_s = now_seconds() - start_time_;
      m.world = world_;
      m.zero_stage = config_.train.zero_stage;
      m.micro_batch = micro;
      m.accumulation = accumulation;
      if (metrics_) metrics_->write(m);
      if (tensorboard_)
        for (const auto& [name, value] : metric_values(m)) tensorboard_->scalar(name, step_, value);
      ProgressPoint point;
      point.step = step_;
      point.rung = rung;
      point.rung_step = rung_step + 1;
      point.img_per_s = m.img_per_s;
      point.loss = loss;
      point.loss_terms = terms;
      point.validation = validated;
      point.evaluation = evaluated;
      point.lr = lr;
      point.grad_norm = grad_norm;
      point.mem_peak_bytes = m.mem_peak_bytes;
      point.memory_capacity = device_->memory_capacity();
      point.data_wait_frac = m.data_wait_frac;
      point.comm_frac = m.comm_frac;
      log_status(progress_.line(point), redraw_progress_);
      interval_start = now_seconds();
      interval_wait = 0;
      interval_comm_start = sync_->comm_seconds();
      interval_images = 0;
    }
    const bool sample_due = config_.run.sample_every > 0 && step_ % config_.run.sample_every == 0;
    if (sample_due || last_step) write_sample(shard, rung_images, step_tag(step_, resolution), summary);

    const bool checkpoint_due =
        (config_.checkpoint.every > 0 && step_ % config_.checkpoint.every == 0) || last_step;
    last_state_ = training_state(rung, rung_step + 1, loader.global_batches_consumed());
    if (checkpointer_->after_step(last_state_, checkpoint_due)) {
      log_info("stopped by ", StopSignals::name(ProcessContext::get().stop_signal()), " after step ",
               step_, "; the checkpoint is committed: continue with --resume auto");
      return false;
    }
  }
  return true;
}

}  // namespace ladder
