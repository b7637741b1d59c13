// Why this file exists: the CT quickstart's data (launch/quickstart_ct.sh). Writes N synthetic
// CT-like volumes as NIfTI with ladder's own writer (io/volume.h): per volume a body ellipsoid
// of soft tissue (40 HU) in air (−1000 HU) with a few organs (liver-like 60, kidney-like 30,
// fat −100) and a spine of bone (700), all sizes and places drawn from (seed, volume), plus a
// little noise — something a 1-channel autoencoder can learn through a soft-tissue window.
//   usage: ct_phantoms --out DIR [--count 6] [--size 64] [--slices 32] [--seed 0]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/rng.h"
#include "io/volume.h"

namespace {

struct Ellipsoid {
  double cx, cy, cz, rx, ry, rz, hu;
  bool contains(double x, double y, double z) const {
    const double dx = (x - cx) / rx, dy = (y - cy) / ry, dz = (z - cz) / rz;
    return dx * dx + dy * dy + dz * dz < 1;
  }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace ladder;
  std::string out;
  int count = 6, size = 64, slices = 32;
  uint64_t seed = 0;
  for (int a = 1; a + 1 < argc; a += 2) {
    const std::string flag = argv[a], value = argv[a + 1];
    if (flag == "--out") out = value;
    else if (flag == "--count") count = std::atoi(value.c_str());
    else if (flag == "--size") size = std::atoi(value.c_str());
    else if (flag == "--slices") slices = std::atoi(value.c_str());
    else if (flag == "--seed") seed = std::strtoull(value.c_str(), nullptr, 10);
    else {
      std::fprintf(stderr, "ct_phantoms: unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  if (out.empty() || count < 1 || size < 8 || slices < 1) {
    std::fprintf(stderr, "usage: ct_phantoms --out DIR [--count 6] [--size 64] [--slices 32] [--seed 0]\n");
    return 2;
  }
  try {
    std::filesystem::create_directories(out);
    for (int v = 0; v < count; ++v) {
      Rng rng(seed, static_cast<uint64_t>(v));
      const double s = size, d = slices;
      const Ellipsoid body{s / 2, s / 2, d / 2, s * rng.uniform(0.36, 0.46), s * rng.uniform(0.28, 0.38), d * 0.6, 40};
      const std::vector<Ellipsoid> organs = {
          {s * rng.uniform(0.35, 0.45), s * rng.uniform(0.4, 0.5), d / 2, s * 0.14, s * 0.11, d * 0.35, 60},
          {s * 0.62, s * rng.uniform(0.55, 0.62), d / 2, s * 0.06, s * 0.08, d * 0.25, 30},
          {s * 0.38, s * rng.uniform(0.55, 0.62), d / 2, s * 0.06, s * 0.08, d * 0.25, 30},
          {s / 2, s * rng.uniform(0.25, 0.32), d / 2, s * 0.16, s * 0.05, d * 0.5, -100},
          {s / 2, s * 0.68, d / 2, s * 0.05, s * 0.05, d * 0.7, 700},
      };
      io::Volume volume;
      volume.nx = volume.ny = size;
      volume.nz = slices;
      volume.voxels.resize(static_cast<size_t>(size) * size * slices);
      for (int z = 0; z < slices; ++z)
        for (int y = 0; y < size; ++y)
          for (int x = 0; x < size; ++x) {
            double hu = -1000;
            if (body.contains(x, y, z)) {
              hu = body.hu;
              for (const Ellipsoid& organ : organs)
                if (organ.contains(x, y, z)) hu = organ.hu;
            }
            volume.voxels[(static_cast<size_t>(z) * size + y) * size + x] = static_cast<float>(hu + rng.normal() * 8);
          }
      volume.display_range = std::make_pair(-1024.0, 3071.0);
      char name[64];
      std::snprintf(name, sizeof name, "phantom-%03d.nii.gz", v);
      io::write_nifti((std::filesystem::path(out) / name).string(), volume);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "ct_phantoms: %s\n", e.what());
    return 1;
  }
  std::printf("ct_phantoms: %d volumes of %dx%dx%d in HU -> %s\n", count, size, size, slices, out.c_str());
  return 0;
}
