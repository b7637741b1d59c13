// Why this file exists: the implementation of the memory plan: the fixed bytes from the
// engine's own allocation rules, the activations from a dry run on PlanBackend.
#include "plan/memory_planner.h"

#include <algorithm>
#include <filesystem>

#include "core/check.h"
#include "core/log.h"
#include "data/data_order.h"
#include "diffusion/denoising_loss.h"
#include "io/image_store.h"
#include "io/latent_store.h"
#include "model/autoencoder_critics.h"
#include "model/autoencoder_kl.h"
#include "model/diffusion_unet.h"
#include "model/inception_v3.h"
#include "model/plan_backend.h"
#include "train/shard_layout.h"

namespace ladder {
namespace {

constexpr int64_t kGridImages = 8;  // a sample grid's images (train/trainer.cpp)

int64_t held_by_rank0(int64_t count, int world) { return (count + world - 1) / world; }

}  // namespace

int64_t gpu_allowance(int64_t counted_bytes) { return counted_bytes / 10 + (int64_t{1} << 30); }

MemoryPlanner::MemoryPlanner(Config config, PlanTarget target) : config_(std::move(config)), target_(target) {
  LADDER_CHECK_USAGE(target_.world >= 1, "plan: --world must be >= 1");
  for (int rung = 0; rung < config_.stages.rungs(); ++rung) micro_batch_for_rung(config_, rung, target_.world);
  {  // the parameter count from the model itself (and an autoencoder's discriminator)
    PlanBackend backend(4, false);
    ParamStore store;
    if (config_.model.kind == "diffusion_unet") {
      DiffusionUNet<PlanBackend>(config_.model, store, backend);
    } else {
      AutoencoderKL<PlanBackend>(config_.model, store, backend);
      AutoencoderCritics<PlanBackend>(config_, store, backend);
    }
    parameters_ = store.count();
  }
  std::error_code error;
  if (target_.gpu && !std::filesystem::exists(config_.data.store, error)) {
    // The records live in host memory, which a GPU plan does not count; only a latent store's
    // downsampling matters, and the seed autoencoder's is 8 (BRIEF §4).
    log_warning("plan: data.store '", config_.data.store, "' is not there; latents are taken as 8x downsampled");
    downsampling_ = 8;
    return;
  }
  LADDER_CHECK_USAGE(!config_.data.store.empty(), "config: data.store is required (the plan counts its records)");
  int64_t count = 0;
  if (config_.model.kind == "diffusion_unet") {
    const io::LatentStoreReader store(config_.data.store);
    count = store.info().count;
    downsampling_ = store.info().downsampling;
  } else {
    const io::ImageStoreReader store(config_.data.store, config_.data.dataset, config_.data.layout);
    count = store.info().count;
    value_bytes_ = data::pixel_type_bytes(store.info().type);
  }
  records_ = count - config_.data.val_images;
  val_records_ = config_.data.val_images;
  if (!config_.data.val_store.empty())
    val_records_ = config_.model.kind == "diffusion_unet"
                       ? io::LatentStoreReader(config_.data.val_store).info().count
                       : io::ImageStoreReader(config_.data.val_store, config_.data.dataset, config_.data.layout).info().count;
  // The world must keep the data order, as `ladder train` demands.
  if (records_ >= 1) data::DataOrder(records_, config_.data.partitions, config_.train.batch).check_world(target_.world);
}

MemoryPlanner::Activations MemoryPlanner::activations(int rung, int micro, bool recompute) const {
  const int resolution = config_.stages.resolutions.at(rung);
  const bool gpu = target_.gpu;
  PlanBackend backend(gpu ? 2 : 4, /*cpu_scratch=*/!gpu);
  MemoryCounter& counter = backend.counter();
  ParamStore store;  // registered, never allocated
  Activations out;
  if (config_.model.kind == "diffusion_unet") {
    const int side = resolution / downsampling_, c = config_.model.in_channels;
    const int64_t latent_bytes = int64_t(micro) * side * side * c * 4;
    if (!gpu) {  // host: the prefetcher's ring of records, the objective's x_t and target
      counter.add(int64_t(config_.data.prefetch) * micro * side * side * 2 * c * 4);
      counter.add(2 * latent_bytes);
    }
    DiffusionUNet<PlanBackend> unet(config_.model, store, backend);
    unet.set_recompute(recompute);
    PlanTensor x_t, target, grad;
    backend.load_values(nullptr, {micro, side, side, c}, x_t);
    backend.load_values(nullptr, {micro, side, side, c}, target);
    const std::vector<float> timesteps(static_cast<size_t>(micro), 0.f), weights(static_cast<size_t>(micro), 1.f);
    const double before = backend.forward_flops();
    unet.forward(x_t, timesteps);
    out.forward_flops_per_image = (backend.forward_flops() - before) / micro;
    // Two steps: the second runs with the first's tensors still held (the steady state).
    for (int step = 0; step < 2; ++step) denoising_step(backend, unet, x_t, target, timesteps, weights, 1.0, grad);
    out.peak = counter.peak();
    return out;
  }
  const int c = config_.model.in_channels;
  const int64_t image_values = int64_t(resolution) * resolution * c;
  AutoencoderKL<PlanBackend> model(config_.model, store, backend);
  AutoencoderCritics<PlanBackend> critics(config_, store, backend);  // the discriminator's steps too
  model.set_recompute(recompute);
  critics.set_recompute(recompute);
  const Shape images_shape{micro, resolution, resolution, c};
  const Shape latent = model.latent_shape(images_shape);
  if (!gpu) {  // host: the ring of micro-batches (float model inputs) and the task's latent noise
    counter.add(int64_t(config_.data.prefetch) * micro * image_values * 4);
    counter.add(latent.numel() * 4);
  }
  PlanTensor images, noise;
  backend.load_values(nullptr, images_shape, images);
  backend.load_values(nullptr, latent, noise);
  const double before = backend.forward_flops();
  model.reconstruct(images);
  out.forward_flops_per_image = (backend.forward_flops() - before) / micro;
  // Two steps: the second runs with the first's tensors still held (the steady state).
  for (int step = 0; step < 2; ++step)
    model.forward_backward(images, noise, 1.0, config_.train.kl_weight,
                           critics.terms(config_.adversarial.enabled(), 1.0));
  if (!gpu) {
    // The sample grid after a step: rank 0's reconstructions of its share of the grid's
    // images and their originals, one image in and out at a time, and the whole grid of both
    // gathered on the host, then the reconstruction forward of one image on the model.
    const int64_t count = std::min<int64_t>(kGridImages, records_);
    const int64_t shown = held_by_rank0(count, target_.world);
    const int64_t chunk = 1;
    const int64_t host = (2 * shown + 2 * chunk + 2 * count) * image_values * 4;
    counter.add(host);
    PlanTensor part;
    backend.load_values(nullptr, {chunk, resolution, resolution, c}, part);
    model.reconstruct(part);
    counter.sub(host);
  }
  out.peak = counter.peak();
  return out;
}

void MemoryPlanner::count_evaluation(RungMemoryPlan& plan) const {
  if (!config_.eval.enabled()) return;
  const bool gpu = target_.gpu;
  PlanBackend backend(4, /*cpu_scratch=*/!gpu);  // fp32 on every device; its own convolutions' workspaces
  InceptionV3<PlanBackend> network(backend);
  network.randomize(0);  // folds the BatchNorms (counted: they live on the backend)
  const int channels = config_.model.kind == "diffusion_unet" ? 3 : config_.model.in_channels;
  const std::vector<uint8_t> image(static_cast<size_t>(int64_t(plan.resolution) * plan.resolution * channels));
  std::vector<float> features;
  network.features(image.data(), 1, plan.resolution, plan.resolution, channels, InceptionInput::kPytorchFid, features);
  // What stays after the first evaluation: the weights, the folded BatchNorms and the grow-only
  // convolution workspaces; what comes and goes: the tensors of one image's pass.
  plan.evaluation_weights = network.params().count() * 4 + backend.counter().current();
  plan.evaluation_activations = backend.counter().peak() - backend.counter().current();
  if (!gpu) {  // host: the rank's made images (fp32 and as saved), the gathered and reference features
    const int64_t count = config_.eval.count, held = held_by_rank0(count, target_.world);
    plan.evaluation_activations += held * plan.resolution * plan.resolution * channels * 5 +
                                   2 * count * kInceptionFeatures * 4;
  }
}

RungMemoryPlan MemoryPlanner::fixed(int rung) const {
  RungMemoryPlan plan;
  plan.rung = rung;
  plan.resolution = config_.stages.resolutions.at(rung);
  plan.per_rank_batch = config_.train.batch / target_.world;
  const int64_t bucket = std::max<int64_t>(1, static_cast<int64_t>(config_.train.bucket_mb * (1 << 20) / 4));
  const ShardLayout layout(parameters_, target_.world, bucket);
  const int64_t all = layout.padded_count(), owned = layout.owned_count();
  const int stage = config_.train.zero_stage;
  int64_t largest_bucket = 0;
  for (const Range& b : layout.buckets()) largest_bucket = std::max(largest_bucket, b.size());
  const bool gpu = target_.gpu;
  plan.parameters = all * 4 + (gpu ? all * 2 : 0);  // fp32 values (+ the bf16 working copy)
  plan.gradients = all * 4;
  plan.moments = (stage == 0 ? all : owned) * 8;
  plan.gradient_shard = stage >= 1 ? owned * 4 : 0;
  if (stage == 2) plan.gradient_shard += (gpu ? owned : largest_bucket / target_.world) * 4;
  const bool ema = config_.ema.decay > 0;
  plan.ema = ema ? owned * 4 : 0;
  if (!gpu) {  // host memory: checkpoint staging, the rank's records
    plan.checkpoint_staging = (ema ? 4 : 3) * owned * 4;
    const int64_t record_bytes =
        config_.model.kind == "diffusion_unet"
            ? int64_t(plan.resolution / downsampling_) * (plan.resolution / downsampling_) * 2 *
                  config_.model.in_channels * 4
            : int64_t(plan.resolution) * plan.resolution * config_.model.in_channels * value_bytes_;
    plan.records = (held_by_rank0(records_, target_.world) +
                    (val_records_ > 0 ? held_by_rank0(val_records_, target_.world) : 0)) *
                   record_bytes;
  }
  count_evaluation(plan);
  return plan;
}

int64_t MemoryPlanner::step_peak(int rung, int micro, bool recompute) const {
  const RungMemoryPlan plan = fixed(rung);
  return plan.fixed_bytes() + activations(rung, micro, recompute).peak + plan.evaluation_activations;
}

RungMemoryPlan MemoryPlanner::plan_rung(int rung) const {
  RungMemoryPlan plan = fixed(rung);
  const int per_rank = static_cast<int>(plan.per_rank_batch);
  for (bool recompute : {false, true})
    for (int m = per_rank; m >= 1; --m) {
      if (per_rank % m != 0) continue;
      const Activations a = activations(rung, m, recompute);
      MicroBatchPlan option;
      option.micro = m;
      option.recompute = recompute;
      option.activation_bytes = a.peak;
      // The model keeps its activation tensors between steps, so an evaluation's pass comes on top.
      option.total_bytes = plan.fixed_bytes() + a.peak + plan.evaluation_activations;
      if (target_.gpu) {
        option.total_bytes += gpu_allowance(option.total_bytes);
        option.fits = target_.gpu_memory <= 0 || option.total_bytes <= target_.gpu_memory;
      }
      plan.training_flops_per_image = a.forward_flops_per_image * 3;
      plan.options.push_back(option);
    }
  return plan;
}

}  // namespace ladder
