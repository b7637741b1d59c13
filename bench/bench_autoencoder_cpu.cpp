// Why this file exists: the CPU speed of the autoencoder's training step through the
// trainer's own CPU device (uint8 images in, L1 + kl_weight·KL, backward, AdamW), at a given
// model, resolution and micro-batch, so that it can be put beside MONAI's AutoencoderKL in
// PyTorch on the same machine (bench/pytorch/autoencoder_torch.py --device cpu;
// bench/compare_autoencoder_cpu.sh alternates them). Prints one JSON line.
//   ./build/bench/bench_autoencoder_cpu CHANNELS RESOLUTION MICRO [STEPS] [RES_BLOCKS] [NORM_GROUPS]
//   ./build/bench/bench_autoencoder_cpu 32,64,64 32 16 5 1 16      (the quickstart model)
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/rng.h"
#include "train/cpu_device.h"

using namespace ladder;

int main(int argc, char** argv) {
  const std::string channels = argc > 1 ? argv[1] : "32,64,64";
  const int resolution = argc > 2 ? std::atoi(argv[2]) : 32;
  const int micro = argc > 3 ? std::atoi(argv[3]) : 16;
  const int steps = argc > 4 ? std::atoi(argv[4]) : 5;
  const std::string res_blocks = argc > 5 ? argv[5] : "1";
  const std::string groups = argc > 6 ? argv[6] : "16";
  const Config config = load_config("", {"--model.channels", channels, "--model.res_blocks", res_blocks,
                                         "--model.norm_groups", groups, "--model.attention_levels", "none",
                                         "--model.mid_attention", "false", "--model.latent_channels", "4",
                                         "--stages.resolutions", std::to_string(resolution)});
  ParamStore store;
  CpuAutoencoderDevice device(config, store);
  store.allocate();
  store.initialize(1);
  device.attach_parameters(store);
  std::unique_ptr<Optimizer> optimizer = device.make_optimizer(store, {Range{0, store.padded_count()}}, {});
  const Shape images{micro, resolution, resolution, 3};
  std::vector<float> pixels(static_cast<size_t>(images.numel()));  // images in [−1, 1]
  Rng rng(2, 0);
  for (float& p : pixels) p = static_cast<float>(rng.below(256)) * (2.0f / 255.0f) - 1.0f;
  std::vector<float> noise(static_cast<size_t>(device.latent_shape(images).numel()));
  for (float& e : noise) e = static_cast<float>(rng.normal());
  AutoencoderObjective objective;
  objective.grad_scale = 1.0 / micro;
  objective.kl_weight = 1e-6;
  auto step = [&] {
    store.zero_grads();
    device.micro_step(pixels.data(), images, noise.data(), objective);
    optimizer->step(store.values(), store.grads(), 1e-4);
  };
  step();  // warm-up (oneDNN creates its primitives)
  const auto start = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) step();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"tool\": \"ladder\", \"channels\": \"%s\", \"parameters\": %lld, \"resolution\": %d, "
              "\"micro_batch\": %d, \"threads\": %d, \"steps\": %d, \"step_s\": %.4f, \"img_per_s\": %.3f}\n",
              channels.c_str(), static_cast<long long>(store.count()), resolution, micro, omp_get_max_threads(),
              steps, seconds / steps, micro * steps / seconds);
  return 0;
}
