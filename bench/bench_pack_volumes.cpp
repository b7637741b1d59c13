// Why this file exists: `ladder pack --nifti` throughput (issue #28), recorded in
// docs/PERFORMANCE.md in MB/s of voxels (float32). It writes synthetic CT-like volumes
// (ellipsoid phantoms in HU, 512×512×S) as .nii and as .nii.gz with ladder's own writer into a
// temporary directory, then times pack of every axial slice to levels 128,256 as float32, and
// as uint8 with a baked window. It removes everything it wrote.
//   usage: bench_pack_volumes [volumes (2)] [slices per volume (64)]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cli/pack_command.h"
#include "io/volume.h"

namespace fs = std::filesystem;
using namespace ladder;

int main(int argc, char** argv) {
  const int volumes = argc > 1 ? std::atoi(argv[1]) : 2;
  const int slices = argc > 2 ? std::atoi(argv[2]) : 64;
  std::string pattern = (fs::temp_directory_path() / "ladder-bench-volumes-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) return 1;
  const fs::path root = pattern;
  io::Volume volume;
  volume.nx = volume.ny = 512;
  volume.nz = slices;
  volume.voxels.resize(static_cast<size_t>(512) * 512 * slices);
  for (int z = 0; z < slices; ++z)
    for (int y = 0; y < 512; ++y)
      for (int x = 0; x < 512; ++x) {
        const double dx = (x - 256) / 220.0, dy = (y - 256) / 180.0, dz = (z - slices / 2.0) / (0.5 * slices);
        const double ox = (x - 320) / 50.0, oy = (y - 250) / 40.0;
        float v = dx * dx + dy * dy + dz * dz < 1 ? 40.0f : -1000.0f;
        if (v > 0 && ox * ox + oy * oy < 1) v = 80.0f;
        volume.voxels[(static_cast<size_t>(z) * 512 + y) * 512 + x] = v + static_cast<float>((x * 13 + y * 7 + z) % 11);
      }
  const double megabytes = double(volumes) * double(volume.voxels.size()) * 4 / 1e6;
  std::printf("%d volumes of 512x512x%d float32 voxels (%.1f MB of voxels), every axial slice, levels 128,256\n\n",
              volumes, slices, megabytes);
  std::printf("%-10s %-22s %10s %12s %14s\n", "files", "store", "seconds", "MB/s voxels", "slices/s");
  for (const std::string extension : {".nii", ".nii.gz"}) {
    const fs::path in = root / ("in" + extension);
    fs::create_directories(in);
    for (int v = 0; v < volumes; ++v) io::write_nifti((in / ("ct" + std::to_string(v) + extension)).string(), volume);
    for (const bool window : {false, true}) {
      const std::string out = (root / "out.h5").string();
      std::vector<std::string> args = {"--nifti", in.string(), "--out", out, "--levels", "128,256"};
      if (window) args.insert(args.end(), {"--window", "-160,240"});
      const auto start = std::chrono::steady_clock::now();
      pack_command(args);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("%-10s %-22s %10.2f %12.1f %14.1f\n", extension.c_str(), window ? "uint8, window baked" : "float32",
                  seconds, megabytes / seconds, double(volumes) * slices / seconds);
      fs::remove(out);
    }
  }
  fs::remove_all(root);
  return 0;
}
