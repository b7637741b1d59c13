// Why this file exists: medical volumes for `ladder pack --nifti`: a NIfTI-1 or NIfTI-2 file
// (.nii, .nii.gz; libnifti2) decoded once into float voxels with its scaling applied, and the
// 2-D slices a store is packed from, taken along one voxel axis, selected, and made square.
// Hostile files are refused before any large allocation: absurd dimensions, a data size the
// file cannot hold, and truncated or corrupt data. NaN and infinite voxels are replaced by 0:
// libnifti does so for float data as it reads it (its rule, as FSL's tools); values that the
// scaling makes non-finite, or beyond float32, are refused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ladder::io {

// A scalar volume: voxel (x, y, z) at voxels[(z · ny + y) · nx + x], values after the file's
// scl_slope / scl_inter.
struct Volume {
  int64_t nx = 0, ny = 0, nz = 0;
  std::vector<float> voxels;
  std::optional<std::pair<double, double>> display_range;  // cal_min..cal_max, where the file sets it
};

// The most voxels one volume may hold (2^30: 4 GiB as float), and the largest side.
constexpr int64_t kMaxVolumeVoxels = int64_t{1} << 30;
constexpr int64_t kMaxVolumeSide = 1 << 16;

// Reads a NIfTI file; Error naming the file and what is wrong with it.
Volume read_nifti(const std::string& path);
// Writes `volume` as a float32 NIfTI-1 file (.nii, or gzip-compressed .nii.gz), with its
// display range as cal_min / cal_max: synthetic phantoms for benchmarks and quickstarts.
void write_nifti(const std::string& path, const Volume& volume);
// Whether `path` is named like a NIfTI file (.nii or .nii.gz).
bool is_nifti_name(const std::string& path);

// The voxel axis slices are taken across: sagittal slices are x = const (y-z planes),
// coronal y = const (x-z planes), axial z = const (x-y planes).
enum class SliceAxis { kSagittal, kCoronal, kAxial };
SliceAxis parse_slice_axis(const std::string& text);  // UsageError naming --axis
const char* slice_axis_name(SliceAxis axis);

// Which slices: all, every K-th from the first, or the N in the middle.
struct SliceSelection {
  enum class Kind { kAll, kEvery, kMiddle };
  Kind kind = Kind::kAll;
  int64_t k = 1;
};
SliceSelection parse_slice_selection(const std::string& text);  // all | every:K | middle:N
std::vector<int64_t> chosen_slices(int64_t count, const SliceSelection& selection);

// Slice `index` across `axis`: (height, width) floats, rows along the slower remaining axis.
std::vector<float> extract_slice(const Volume& volume, SliceAxis axis, int64_t index, int64_t& height, int64_t& width);

// A (height, width) slice made square: `pad` centres it on a side of max(height, width) filled
// with `fill`; otherwise the centred min(height, width) square is kept.
std::vector<float> make_square(const std::vector<float>& slice, int64_t height, int64_t width, bool pad, float fill,
                               int64_t& side);

}  // namespace ladder::io
