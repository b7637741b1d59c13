// Why this file exists: the CPU speed of the diffusion UNet's training step (forward, MSE
// against a random target, backward, AdamW) for the reference's tiny configuration (d) and
// the 2D LDM tutorial's (c), on latents of 16×16 (the tutorial's 3×16×16), so that it can be
// put beside MONAI's DiffusionModelUNet in PyTorch on the same machine
// (bench/pytorch/unet_torch.py; bench/compare_unet.sh alternates them). Prints one JSON line.
//   ./build/bench/bench_unet tiny 8 [steps]     ./build/bench/bench_unet tutorial 4 [steps]
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config/config.h"
#include "core/rng.h"
#include "model/cpu_backend.h"
#include "model/diffusion_unet.h"
#include "train/adamw.h"

using namespace ladder;

int main(int argc, char** argv) {
  const std::string preset = argc > 1 ? argv[1] : "tiny";
  const int batch = argc > 2 ? std::atoi(argv[2]) : 8;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 5;
  std::vector<std::string> flags =
      preset == "tutorial"
          ? std::vector<std::string>{"--model.in_channels", "3", "--model.res_blocks", "2", "--model.channels",
                                     "128,256,512", "--model.attention_levels", "0,1,1", "--model.head_channels",
                                     "0,256,512", "--model.norm_groups", "32"}
          : std::vector<std::string>{"--model.in_channels", "4", "--model.res_blocks", "1", "--model.channels",
                                     "32,64", "--model.attention_levels", "0,1", "--model.head_channels", "0,32",
                                     "--model.norm_groups", "16"};
  const Config config = load_config("", flags);
  ParamStore store;
  CpuBackend backend;
  DiffusionUNet<CpuBackend> model(config.model, store, backend);
  store.allocate();
  store.initialize(1);
  AdamW optimizer(store, {Range{0, store.padded_count()}}, AdamWSettings{});
  const int channels = config.model.in_channels;
  TensorF x({batch, 16, 16, channels}), grad({batch, 16, 16, channels});
  std::vector<float> target(static_cast<size_t>(x.numel()));
  Rng rng(2, 0);
  for (int64_t i = 0; i < x.numel(); ++i) {
    x[i] = static_cast<float>(rng.normal());
    target[i] = static_cast<float>(rng.normal());
  }
  std::vector<float> timesteps(static_cast<size_t>(batch));
  for (int b = 0; b < batch; ++b) timesteps[b] = static_cast<float>((b * 97) % 1000);
  auto step = [&] {
    const TensorF& y = model.forward(x, timesteps);
    for (int64_t i = 0; i < y.numel(); ++i) grad[i] = 2.f * (y[i] - target[i]) / static_cast<float>(y.numel());
    store.zero_grads();
    model.backward(grad);
    optimizer.step(store.values(), store.grads(), 1e-4);
  };
  step();  // warm-up
  const auto start = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) step();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"tool\": \"ladder\", \"preset\": \"%s\", \"parameters\": %lld, \"batch\": %d, \"latent\": \"%dx16x16\", "
              "\"threads\": %d, \"steps\": %d, \"step_s\": %.4f, \"img_per_s\": %.3f}\n",
              preset.c_str(), static_cast<long long>(store.count()), batch, channels, omp_get_max_threads(), steps,
              seconds / steps, batch * steps / seconds);
  return 0;
}
