// Why this file exists: `ladder pack --nifti DIR`, which turns NIfTI volumes (CT, MRI) into a
// store of 2-D slices: each volume decoded once (io/volume.h), its chosen slices across one
// axis made square (padded with the volume's minimum, or cropped) and area-resized to the top
// level, the lower levels box filters of it, stored as float32, float16 or uint16 (store
// format 2) — or, with a window, baked into uint8 through data.intensity's window transform.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "data/pixel_type.h"
#include "io/volume.h"

namespace ladder {

struct VolumePackOptions {
  std::string dir;          // searched recursively for .nii and .nii.gz, in sorted path order
  std::string out;
  std::vector<int> levels;  // ascending; levels.back() is the top
  io::SliceAxis axis = io::SliceAxis::kAxial;
  io::SliceSelection slices;
  bool pad = true;  // square by padding (else by cropping)
  std::optional<std::pair<double, double>> window;  // bake this window into a uint8 store
  data::PixelType type = data::PixelType::kFloat32;
};

// Packs; returns 0, or throws (UsageError for bad options, Error when no volume could be read).
int pack_volumes(const VolumePackOptions& options);

}  // namespace ladder
