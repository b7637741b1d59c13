// Why this file exists: issue 3 asks that loading a rank's share of an image store from the
// page cache runs at ≥ 1 GB/s. This program packs a temporary store in /tmp (random pixels,
// one level), reads it once to warm the page cache, then times load_shard (one strided
// H5Dread, or one per image when strided, + a checksum per image) at several world sizes,
// the checksum and the shard buffer's allocation alone for context, and verify_all; it
// prints GB/s and removes the store.
//   usage: bench_store_load [images] [resolution] [repeats]   (default 200 256 5)
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/host_buffer.h"
#include "core/rng.h"
#include "io/image_store.h"

namespace {

struct Timing {
  double median_s = 0, best_s = 0;
};

Timing time_repeats(int repeats, const std::function<void()>& fn) {
  std::vector<double> seconds;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return {seconds[seconds.size() / 2], seconds.front()};
}

void print_row(const char* name, double bytes, const Timing& t) {
  std::printf("%-34s %10.1f %9.1f %8.2f %9.2f\n", name, bytes / 1048576.0, t.median_s * 1e3,
              bytes / t.median_s * 1e-9, bytes / t.best_s * 1e-9);
}

}  // namespace

int main(int argc, char** argv) {
  const int images = argc > 1 ? std::max(1, std::atoi(argv[1])) : 200;
  const int resolution = argc > 2 ? std::max(1, std::atoi(argv[2])) : 256;
  const int repeats = argc > 3 ? std::max(1, std::atoi(argv[3])) : 5;
  const int channels = 3;
  const int64_t image_bytes = int64_t(resolution) * resolution * channels;
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("ladder-bench-store-" + std::to_string(::getpid()) + ".h5"))
                               .string();

  // Pack: random pixels, one level; image i is the window at offset i of one random buffer, so
  // every image differs and no time goes to generating pixels while packing.
  std::vector<uint8_t> pixels(static_cast<size_t>(image_bytes + images));
  ladder::Rng rng(5, 0);
  for (auto& b : pixels) b = static_cast<uint8_t>(rng.below(256));
  const auto pack_start = std::chrono::steady_clock::now();
  {
    ladder::io::ImageStoreWriter writer(path, channels, {resolution});
    for (int i = 0; i < images; ++i) {
      writer.append({pixels.data() + i}, "image-" + std::to_string(i));  // (R, R, C)
    }
    writer.finish();
  }
  const double pack_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - pack_start).count();
  const double total = double(images) * double(image_bytes);

  int status = 0;
  try {
    ladder::io::ImageStoreReader reader(path);
    reader.load_shard(resolution, 0, 1);  // warms the page cache: the timed reads are the second+

    std::printf("image store load: %d images of %dx%dx%d (%.1f MiB), store %s\n", images,
                resolution, resolution, channels, total / 1048576.0, path.c_str());
    std::printf("page cache warm; OpenMP threads %d; %d repeats (median and best); pack %.2f GB/s "
                "(writer, into the page cache)\n\n",
                omp_get_max_threads(), repeats, total / pack_s * 1e-9);
    std::printf("%-34s %10s %9s %8s %9s\n", "operation", "MiB", "median ms", "GB/s", "best GB/s");
    for (int world : {1, 2, 4}) {
      const double bytes = double((images + world - 1) / world) * double(image_bytes);
      const Timing t = time_repeats(repeats, [&] { reader.load_shard(resolution, 0, world); });
      const std::string name = "load_shard rank 0 of world " + std::to_string(world);
      print_row(name.c_str(), bytes, t);
    }
    const ladder::data::ImageShard shard = reader.load_shard(resolution, 0, 1);
    std::vector<uint64_t> sums(static_cast<size_t>(images));
    const Timing checksum = time_repeats(repeats, [&] {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < shard.count(); ++i)
        sums[i] = ladder::io::store_checksum(shard.image(i), image_bytes);
    });
    print_row("  of which: checksums (in RAM)", total, checksum);
    // The shard's HostBuffer: aligned_alloc + zeroing, i.e. first-touch page faults.
    const Timing allocation = time_repeats(repeats, [&] { ladder::HostBuffer<uint8_t> b{int64_t(total)}; });
    print_row("  of which: HostBuffer alloc+zero", total, allocation);
    print_row("verify_all (blocks of 256 MiB)", total, time_repeats(repeats, [&] { reader.verify_all(); }));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_store_load: %s\n", e.what());
    status = 1;
  }
  std::filesystem::remove(path);
  return status;
}
