// Why this file exists: measures the prefetcher — how many micro-batch images per second one
// loader thread assembles (in the world-invariant data order, flipped) from a rank's shard at
// 256² RGB, converted to model input (uint8 → float in [−1, 1]) as they are assembled.
// Target (issue #3): ≥ 2,000 images/s for one loader thread. Arguments: resolution (256),
// global batch (16: 16 partitions, one micro-batch a step; 256: 16 micro-batches a step), and
// the pixels: uint8 (photos, x / 127.5 − 1), uint16 (the same scenes × 257 through
// window:1000,60000) or float32 (scenes as HU, v · 16 − 1024, through percentile:0.5,99.5,
// the costliest transform: two selections per image).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "data/prefetcher.h"
#include "data/synthetic_images.h"

using namespace ladder;

int main(int argc, char** argv) {
  const int resolution = argc > 1 ? std::atoi(argv[1]) : 256;
  const int images = 512, micro = 16, batches = 1000;
  const int batch = argc > 2 ? std::atoi(argv[2]) : micro;
  const std::string pixels = argc > 3 ? argv[3] : "uint8";
  const data::DataOrder order(images, 0, batch);
  data::ImageShard shard;
  shard.resolution = resolution;
  shard.channels = 3;
  for (int i = 0; i < images; ++i) shard.indices.push_back(i);
  std::string spec = "auto";
  if (pixels == "uint16") shard.type = data::PixelType::kUint16, spec = "window:1000,60000";
  if (pixels == "float32") shard.type = data::PixelType::kFloat32, spec = "percentile:0.5,99.5";
  shard.intensity = data::IntensityTransform(data::parse_intensity(spec), shard.type);
  shard.pixels = HostBuffer<uint8_t>(images * shard.image_bytes());
  std::vector<uint8_t> scene(static_cast<size_t>(shard.image_values()));
  for (int i = 0; i < images; ++i) {
    data::render_synthetic_image(1, i, resolution, 3, scene.data());
    uint8_t* out = shard.pixels.data() + i * shard.image_bytes();
    for (size_t e = 0; e < scene.size(); ++e) {
      if (shard.type == data::PixelType::kUint8) out[e] = scene[e];
      if (shard.type == data::PixelType::kUint16) {
        const auto v = static_cast<uint16_t>(scene[e] * 257);
        std::memcpy(out + 2 * e, &v, 2);
      }
      if (shard.type == data::PixelType::kFloat32) {
        const float v = scene[e] * 16.0f - 1024.0f;
        std::memcpy(out + 4 * e, &v, 4);
      }
    }
  }

  std::printf("prefetcher: %d images of %dx%dx3 held, micro-batch %d, global batch %d (%lld partitions), "
              "%d batches, flip on\n%s\n\n", images, resolution, resolution, micro, batch,
              static_cast<long long>(order.partitions()), batches, shard.intensity.description().c_str());
  std::printf("%-8s %-6s %14s %18s\n", "threads", "depth", "images/s", "GB/s (stored read)");
  for (int threads : {1, 2}) {
    data::PrefetchSettings settings;
    settings.micro_batch = micro;
    settings.threads = threads;
    settings.depth = 4;
    settings.flip = true;
    data::Prefetcher prefetcher(shard, order, settings);
    prefetcher.next();  // warm-up
    auto start = std::chrono::steady_clock::now();
    for (int k = 0; k < batches; ++k) prefetcher.next();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double rate = batches * double(micro) / seconds;
    std::printf("%-8d %-6d %14.0f %18.2f\n", threads, 4, rate, rate * shard.image_bytes() / 1e9);
  }
  return 0;
}
