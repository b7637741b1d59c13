// Why this file exists: issue 3 asks for `ladder pack` throughput at 1024² from JPEG, recorded
// in docs/PERFORMANCE.md. This makes a folder of 1280×1024 JPEGs (synthetic scenes, quality
// 90) in a temporary directory, times pack_command to levels 256,512,1024 and prints images/s
// and MB/s of JPEG input. It removes everything it wrote.
//   usage: bench_pack [images (48)] [threads (all cores)]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cli/pack_command.h"
#include "data/synthetic_images.h"
#include "io/image_decode.h"

namespace {

namespace fs = std::filesystem;

// Removes the directory tree on every exit path.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "ladder-bench-pack-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

int main(int argc, char** argv) {
  const int count = argc > 1 ? std::atoi(argv[1]) : 48;
  const int threads = argc > 2 ? std::atoi(argv[2])
                               : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (count < 1 || threads < 1) {
    std::fprintf(stderr, "usage: bench_pack [images >= 1] [threads >= 1]\n");
    return 2;
  }
  constexpr int kWidth = 1280, kHeight = 1024;
  try {
    ScratchDir scratch;
    const fs::path images = scratch.path() / "images";
    fs::create_directories(images);

    // Inputs: the 1280² synthetic scene, its middle 1024 rows: (1024, 1280, 3).
    std::vector<uint8_t> scene(size_t(kWidth) * kWidth * 3);
    uint64_t jpeg_bytes = 0;
    for (int i = 0; i < count; ++i) {
      ladder::data::render_synthetic_image(2024, i, kWidth, 3, scene.data());
      const uint8_t* rows = scene.data() + size_t((kWidth - kHeight) / 2) * kWidth * 3;
      char name[32];
      std::snprintf(name, sizeof name, "img-%04d.jpg", i);
      const std::string path = (images / name).string();
      ladder::io::write_jpeg(path, kHeight, kWidth, 3, rows, 90);
      jpeg_bytes += fs::file_size(path);
    }

    const std::string out = (scratch.path() / "store.h5").string();
    const auto start = std::chrono::steady_clock::now();
    ladder::pack_command({"--images", images.string(), "--out", out, "--levels", "256,512,1024",
                          "--threads", std::to_string(threads)});
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    std::printf("\nbench_pack: %d JPEGs %dx%d q90 (%.1f MB) -> levels 256,512,1024, %d threads\n",
                count, kWidth, kHeight, double(jpeg_bytes) / 1e6, threads);
    std::printf("  %-12s %10s %12s %14s\n", "", "seconds", "images/s", "JPEG MB/s");
    std::printf("  %-12s %10.3f %12.1f %14.1f\n", "pack", seconds, count / seconds,
                double(jpeg_bytes) / 1e6 / seconds);
    std::printf("  store: %.1f MB\n", double(fs::file_size(out)) / 1e6);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_pack: %s\n", e.what());
    return 1;
  }
  return 0;
}
