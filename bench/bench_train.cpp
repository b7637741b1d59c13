// Why this file exists: the GPU training-step benchmark of issue #5. For the 51.7M-parameter
// high-resolution AutoencoderKL (BRIEF §4 default) at each resolution and recompute setting,
// it finds the largest micro-batch that fits (doubling, then bisecting, each try on a fresh
// model) and times full training steps there through the trainer's own GPU path (CudaDevice):
// micro-batches from the real prefetcher (page-locked ring, default loader settings) over an
// in-memory shard of synthetic images, the copy stream, forward + backward, the gradient
// norm, the fused AdamW on the whole flat buffer (one rank, ZeRO 0) and the refresh of the
// working copy. It prints one JSON
// object per measurement (the keys bench/compare_train.py reads):
//   {"impl": "ladder", "resolution", "micro_batch", "recompute", "precision", "steps",
//    "step_ms", "img_per_s", "data_wait_frac", "peak_mem_bytes", "status", "device_name"}
// MFU is computed by compare_train.py from bench/flops.py and the measured bf16 matrix peak.
//
// Usage: bench_train [--resolutions 256,512,1024] [--recompute none,blocks]
//                    [--precision bf16|fp16|fp32] [--micro-batch N] [--max-micro-batch 256]
//                    [--steps 10] [--warmup 3] [--channels 128,256,512,512]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifndef LADDER_WITH_CUDA
int main() {
  std::fprintf(stderr, "bench_train: this build has no CUDA backend (LADDER_CUDA=ON)\n");
  return 2;
}
#else

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <chrono>

#include "config/config.h"
#include "core/check.h"
#include "data/image_shard.h"
#include "data/prefetcher.h"
#include "data/synthetic_images.h"
#include "kernels/cuda/device_memory.h"
#include "train/cuda_device.h"

using namespace ladder;

namespace {

struct Options {
  std::vector<int> resolutions{256, 512, 1024};
  std::vector<std::string> recompute{"none", "blocks"};
  std::string precision = "bf16";
  std::string channels = "128,256,512,512";
  int micro_batch = 0;  // 0: search for the largest that fits
  int max_micro_batch = 256;
  int steps = 10, warmup = 3;
};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    parts.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return parts;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    LADDER_CHECK_USAGE(i + 1 < argc, flag, " needs a value");
    const std::string value = argv[++i];
    if (flag == "--resolutions") {
      o.resolutions.clear();
      for (const std::string& r : split(value)) o.resolutions.push_back(std::stoi(r));
    } else if (flag == "--recompute") {
      o.recompute = split(value);
    } else if (flag == "--precision") {
      o.precision = value;
    } else if (flag == "--channels") {
      o.channels = value;
    } else if (flag == "--micro-batch") {
      o.micro_batch = std::stoi(value);
    } else if (flag == "--max-micro-batch") {
      o.max_micro_batch = std::stoi(value);
    } else if (flag == "--steps") {
      o.steps = std::stoi(value);
    } else if (flag == "--warmup") {
      o.warmup = std::stoi(value);
    } else {
      LADDER_CHECK_USAGE(false, "unknown flag ", flag);
    }
  }
  return o;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Measurement {
  bool fits = false;
  double step_ms = 0, data_wait_frac = 0;
  int64_t peak_bytes = 0;
};

// A shard of synthetic images at `resolution`: enough for several micro-batches.
data::ImageShard synthetic_shard(int resolution, int images) {
  data::ImageShard shard;
  shard.resolution = resolution;
  shard.channels = 3;
  shard.pixels = HostBuffer<uint8_t>(int64_t(images) * resolution * resolution * 3);
  for (int i = 0; i < images; ++i) {
    shard.indices.push_back(i);
    data::render_synthetic_image(7, i, resolution, 3, shard.pixels.data() + shard.image_bytes() * i);
  }
  return shard;
}

// Builds a fresh model on a fresh CudaAutoencoderDevice (the trainer's GPU path: page-locked prefetcher
// ring, copy stream, fp32 gradients, fused AdamW) at `micro` images per step and times
// `steps` training steps after `warmup`; fits = false when the device ran out of memory
// (everything is freed again).
template <class T>
Measurement measure(const Config& config, const data::ImageShard& shard, int micro,
                    bool recompute, int warmup, int steps) {
  Measurement m;
  try {
    ParamStore store;
    CudaAutoencoderDevice<T> device(config, store, 0);
    store.allocate();
    store.initialize(1);
    device.attach_parameters(store);
    device.set_recompute(recompute);
    std::unique_ptr<Optimizer> optimizer =
        device.make_optimizer(store, {Range{0, store.padded_count()}}, AdamWSettings{});
    FlatMemory& memory = device.memory();

    data::PrefetchSettings prefetch;
    prefetch.micro_batch = micro;
    prefetch.depth = config.data.prefetch;  // the default loader settings
    prefetch.threads = config.data.loader_threads;
    prefetch.pin_buffers = device.buffer_pinner();
    const data::DataOrder order(shard.count(), 0, micro);  // one rank, one micro-batch a step
    data::Prefetcher loader(shard, order, prefetch);
    const int r = shard.resolution;
    const Shape images{micro, r, r, 3};
    std::vector<float> noise(static_cast<size_t>(device.latent_shape(images).numel()), 0.5f);

    double wait = 0, start = 0;
    for (int step = 0; step < warmup + steps; ++step) {
      if (step == warmup) {
        memory.synchronize();
        device.reset_peak();
        wait = 0;
        start = now_seconds();
      }
      memory.zero(memory.grads(), store.padded_count());
      const double wait_start = now_seconds();
      const data::MicroBatch& batch = loader.next();
      wait += now_seconds() - wait_start;
      AutoencoderObjective objective;
      objective.grad_scale = 1.0 / micro;
      objective.kl_weight = 1e-6;
      device.micro_step(batch.values.data(), images, noise.data(), objective);
      memory.squared_norm(memory.grads(), store.padded_count());  // as the trainer: clipping
      optimizer->step(memory.values(), memory.grads(), 1e-5);
      device.parameters_changed();
    }
    memory.synchronize();
    const double seconds = now_seconds() - start;
    m.fits = true;
    m.step_ms = 1000.0 * seconds / steps;
    m.data_wait_frac = wait / seconds;
    m.peak_bytes = device.peak_bytes();
  } catch (const Error& e) {
    if (!cuda::is_allocation_failure(e)) throw;
    std::fprintf(stderr, "bench_train: micro-batch %d does not fit: %s\n", micro, e.what());
    m.fits = false;
  }
  return m;
}

template <class T>
void run_all(const Options& o, const Config& config) {
  cudaDeviceProp properties{};
  LADDER_CUDA_CHECK(cudaGetDeviceProperties(&properties, 0));
  for (int resolution : o.resolutions) {
    const data::ImageShard shard = synthetic_shard(resolution, 64);
    for (const std::string& recompute : o.recompute) {
      const bool blocks = recompute == "blocks";
      auto fits = [&](int micro) { return measure<T>(config, shard, micro, blocks, 1, 1).fits; };
      int micro = o.micro_batch;
      if (micro == 0) {  // the largest micro-batch that fits: double, then bisect
        int good = 0, bad = o.max_micro_batch + 1;
        for (int m = 1; m <= o.max_micro_batch; m *= 2) {
          if (!fits(m)) {
            bad = m;
            break;
          }
          good = m;
        }
        while (good > 0 && bad - good > 1) {
          const int mid = (good + bad) / 2;
          (fits(mid) ? good : bad) = mid;
        }
        micro = good;
      }
      Measurement m;
      if (micro > 0) m = measure<T>(config, shard, micro, blocks, o.warmup, o.steps);
      std::printf(
          "{\"impl\": \"ladder\", \"resolution\": %d, \"micro_batch\": %d, \"recompute\": \"%s\", "
          "\"precision\": \"%s\", \"steps\": %d, \"step_ms\": %.3f, \"img_per_s\": %.2f, "
          "\"data_wait_frac\": %.5f, \"peak_mem_bytes\": %lld, \"status\": \"%s\", "
          "\"device_name\": \"%s\"}\n",
          resolution, micro, recompute.c_str(), o.precision.c_str(), o.steps, m.step_ms,
          m.fits ? 1000.0 * micro / m.step_ms : 0.0, m.data_wait_frac,
          static_cast<long long>(m.peak_bytes), m.fits ? "ok" : "oom", properties.name);
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    LADDER_CHECK_USAGE(cuda::cuda_device_available(), "no CUDA device: ",
                       cuda::cuda_device_problem());
    const Config config = load_config("", {"--model.channels", o.channels, "--model.res_blocks", "2",
                                           "--model.attention_levels", "none",
                                           "--model.latent_channels", "4"});
    if (o.precision == "bf16")
      run_all<__nv_bfloat16>(o, config);
    else if (o.precision == "fp16")
      run_all<__half>(o, config);
    else if (o.precision == "fp32")
      run_all<float>(o, config);
    else
      LADDER_CHECK_USAGE(false, "--precision must be bf16, fp16 or fp32");
    return 0;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 1;
  }
}

#endif  // LADDER_WITH_CUDA
