// Why this file exists: what a checkpoint costs the training loop. For the 51.7M-parameter
// high-resolution autoencoder (BRIEF §4 default; fp32 master + Adam m, v = 12 bytes per
// parameter), run under `mpirun -np N` (N = 1, 2, 4), the trainer's own sequence: a
// checkpoint falls due at a step boundary (Checkpointer::after_step), the next step's
// forward and backward run (one real micro-step of the model, 2 images at 32², on the CPU
// device), then the update waits until the checkpoint has its copy (wait_until_staged). The
// stall is the time spent in those two calls; against it, alternating, the synchronous write
// (after_step + finish: stage, write, fsync, hash every shard, commit), and the read
// throughput of a resume's ranged reads (every rank reads all master weights and its own
// moments), and the micro-step's time with and without a checkpoint written beside it (the
// background write shares the cores). Rank 0 prints one JSON line per repeat. The disk's own figure comes from dd
// (bench/checkpoint_disk.sh runs both).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "comm/communicator.h"
#include "comm/mpi_session.h"
#include "config/config.h"
#include "train/adamw.h"
#include "train/compute_device.h"
#include "train/checkpointer.h"
#include "train/flat_memory.h"
#include "train/resume.h"
#include "train/shard_layout.h"

using namespace ladder;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession mpi(&argc, &argv);
  {
    const std::string dir = argc > 1 ? argv[1] : "bench-checkpoint-run";
    const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
    std::unique_ptr<Communicator> comm = make_communicator(CommSettings{});
    const int rank = comm->rank(), world = comm->world();
    Config config = load_config("", {"--run.dir", dir, "--checkpoint.keep", "1", "--run.device", "cpu"});
    ParamStore params;
    std::unique_ptr<AutoencoderDevice> device = make_autoencoder_device(config, params, 0);
    const ShardLayout layout(params.count(), world,
                             static_cast<int64_t>(config.train.bucket_mb * (1 << 20) / sizeof(float)));
    params.allocate(layout.padded_count());
    params.initialize(1);
    device->attach_parameters(params);
    FlatMemory& memory = device->memory();
    AdamW optimizer(params, layout.owned_ranges(rank), AdamWSettings{});  // ZeRO-1/2 ownership
    const Shape images{2, 32, 32, 3};
    const std::vector<float> pixels(static_cast<size_t>(images.numel()), -0.2f);  // images in [−1, 1]
    const std::vector<float> noise(static_cast<size_t>(device->latent_shape(images).numel()), 0.5f);
    {  // non-zero moments, as after training
      std::vector<float> ones(static_cast<size_t>(layout.owned_count()), 1e-3f);
      optimizer.upload_moments(layout.owned_ranges(rank), ones.data(), ones.data());
    }
    if (rank == 0) std::filesystem::remove_all(dir);
    comm->barrier();
    Checkpointer checkpointer(config, *comm, params, layout, memory, optimizer, nullptr, {}, {});
    const double bytes = 12.0 * static_cast<double>(layout.padded_count());
    if (rank == 0)
      std::printf("# AutoencoderKL %lld parameters, %d ranks, %.1f MB per checkpoint (%.1f MB per rank)\n",
                  static_cast<long long>(params.count()), world, bytes / 1e6, bytes / world / 1e6);
    int64_t step = 0;
    AutoencoderObjective objective;
    objective.grad_scale = 1.0;
    objective.kl_weight = 1e-6;
    for (int r = 0; r < repeats; ++r) {
      io::TrainingState state;
      // Asynchronous: what the loop waits for, then the rest in the background.
      state.step = ++step;
      comm->barrier();
      double start = now_seconds();
      checkpointer.after_step(state, /*scheduled=*/true);
      double stall = now_seconds() - start;
      start = now_seconds();
      device->micro_step(pixels.data(), images, noise.data(), objective);  // the next step
      const double compute = now_seconds() - start;
      start = now_seconds();
      checkpointer.wait_until_staged();
      stall += now_seconds() - start;
      comm->all_reduce_sum(&stall, 1, DType::kF64);  // mean over ranks
      stall /= world;
      checkpointer.finish(state);
      // Synchronous: staging, write, fsync, hash and commit before returning.
      state.step = ++step;
      comm->barrier();
      start = now_seconds();
      checkpointer.after_step(state, true);
      checkpointer.finish(state);
      const double sync = now_seconds() - start;
      // The same micro-step with no checkpoint in flight: what the background write costs it.
      start = now_seconds();
      device->micro_step(pixels.data(), images, noise.data(), objective);
      const double compute_alone = now_seconds() - start;
      // Read back as a resume on this world size would.
      comm->barrier();
      start = now_seconds();
      const std::optional<Checkpoint> checkpoint = choose_checkpoint(
          io::CheckpointDirectory(dir).step_path(state.step), io::CheckpointDirectory(dir), *comm);
      const double verify = now_seconds() - start;
      start = now_seconds();
      load_master(*checkpoint, params);
      load_moments(*checkpoint, optimizer);
      comm->barrier();
      const double read = now_seconds() - start;
      const double read_bytes = 4.0 * layout.padded_count() * world + 8.0 * layout.padded_count();
      if (rank == 0)
        std::printf("{\"ranks\": %d, \"repeat\": %d, \"stall_s\": %.4f, \"sync_write_s\": %.3f, "
                    "\"stall_frac\": %.4f, \"micro_step_s\": %.3f, \"micro_step_alone_s\": %.3f, "
                    "\"write_GBps\": %.3f, \"verify_s\": %.3f, \"read_s\": %.3f, "
                    "\"read_GBps\": %.3f}\n",
                    world, r, stall, sync, stall / sync, compute, compute_alone, bytes / sync / 1e9,
                    verify, read, read_bytes / read / 1e9);
    }
  }
  return 0;
}
