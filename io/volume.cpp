// Why this file exists: NIfTI decoding through libnifti2 and the slicing of volumes
// (io/volume.h).
#include "io/volume.h"

#include <nifti2_io.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/check.h"

namespace ladder::io {
namespace {

struct NiftiFree {
  void operator()(nifti_image* image) const { nifti_image_free(image); }
};
using NiftiImage = std::unique_ptr<nifti_image, NiftiFree>;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// How many bytes a gzip file decompresses to, counting no further than `enough`: one streaming
// pass in constant memory, so that a small file claiming a huge volume (a decompression bomb
// or a cut file) is refused before libnifti allocates the volume.
uint64_t gzip_bytes_up_to(const std::string& path, uint64_t enough) {
  const gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return 0;
  std::vector<char> buffer(1 << 20);
  uint64_t total = 0;
  while (total < enough) {
    const int got = gzread(file, buffer.data(), static_cast<unsigned>(buffer.size()));
    if (got <= 0) break;
    total += static_cast<uint64_t>(got);
  }
  gzclose(file);
  return total;
}

// Voxel i of `data` (`datatype`, native byte order) as a double; false for other types.
bool voxel_reader(int datatype, double (**read)(const void*, int64_t)) {
  switch (datatype) {
    case DT_UINT8: *read = [](const void* d, int64_t i) { return double(static_cast<const uint8_t*>(d)[i]); }; return true;
    case DT_INT8: *read = [](const void* d, int64_t i) { return double(static_cast<const int8_t*>(d)[i]); }; return true;
    case DT_INT16: *read = [](const void* d, int64_t i) { return double(static_cast<const int16_t*>(d)[i]); }; return true;
    case DT_UINT16: *read = [](const void* d, int64_t i) { return double(static_cast<const uint16_t*>(d)[i]); }; return true;
    case DT_INT32: *read = [](const void* d, int64_t i) { return double(static_cast<const int32_t*>(d)[i]); }; return true;
    case DT_UINT32: *read = [](const void* d, int64_t i) { return double(static_cast<const uint32_t*>(d)[i]); }; return true;
    case DT_INT64: *read = [](const void* d, int64_t i) { return double(static_cast<const int64_t*>(d)[i]); }; return true;
    case DT_UINT64: *read = [](const void* d, int64_t i) { return double(static_cast<const uint64_t*>(d)[i]); }; return true;
    case DT_FLOAT32: *read = [](const void* d, int64_t i) { return double(static_cast<const float*>(d)[i]); }; return true;
    case DT_FLOAT64: *read = [](const void* d, int64_t i) { return static_cast<const double*>(d)[i]; }; return true;
    default: return false;
  }
}

}  // namespace

bool is_nifti_name(const std::string& path) { return ends_with(path, ".nii") || ends_with(path, ".nii.gz"); }

Volume read_nifti(const std::string& path) {
  nifti_set_debug_level(0);  // its messages would repeat ours
  NiftiImage header(nifti_image_read(path.c_str(), 0));
  if (!header) LADDER_FAIL(path, ": not a readable NIfTI file (bad or truncated header)");
  const nifti_image& h = *header;
  for (int d = 1; d <= 3; ++d)
    if (h.dim[d] < 1 || h.dim[d] > kMaxVolumeSide)
      LADDER_FAIL(path, ": dimension ", d, " is ", h.dim[d], ", outside 1..", kMaxVolumeSide);
  for (int d = 4; d <= std::min<int64_t>(h.dim[0], 7); ++d)
    if (h.dim[d] > 1) LADDER_FAIL(path, ": a ", h.dim[0], "-D image (dimension ", d, " is ", h.dim[d],
                                  "); pack takes 3-D volumes");
  const int64_t voxels = h.dim[1] * h.dim[2] * h.dim[3];  // each ≤ 2^16: no overflow
  if (voxels > kMaxVolumeVoxels)
    LADDER_FAIL(path, ": ", voxels, " voxels, more than the ", kMaxVolumeVoxels, " one volume may hold");
  double (*read)(const void*, int64_t) = nullptr;
  if (!voxel_reader(h.datatype, &read))
    LADDER_FAIL(path, ": voxel type ", nifti_datatype_string(h.datatype), " is not supported (integers and floats)");
  // The data must be there before it is allocated: a small file may claim a huge volume.
  const uint64_t needed = static_cast<uint64_t>(voxels) * static_cast<uint64_t>(h.nbyper);
  std::error_code error;
  const uint64_t wanted = needed + static_cast<uint64_t>(std::max<int64_t>(h.iname_offset, 0));
  if (ends_with(path, ".gz")) {
    const uint64_t stored = gzip_bytes_up_to(path, wanted);
    if (stored < wanted)
      LADDER_FAIL(path, ": the compressed data holds ", stored, " bytes, the header needs ", wanted,
                  " (truncated or forged)");
  } else {
    const std::string data_file = h.iname != nullptr ? h.iname : path;
    const uint64_t size = std::filesystem::file_size(data_file, error);
    if (error || size < wanted)
      LADDER_FAIL(path, ": the file holds ", error ? 0 : size, " bytes, the header needs ", wanted, " (truncated)");
  }
  if (nifti_image_load(header.get()) != 0 || header->data == nullptr)
    LADDER_FAIL(path, ": cannot read its voxels (truncated or corrupt data)");

  Volume volume;
  volume.nx = h.dim[1];
  volume.ny = h.dim[2];
  volume.nz = h.dim[3];
  const bool scaled = h.scl_slope != 0 && std::isfinite(h.scl_slope) && std::isfinite(h.scl_inter);
  volume.voxels.resize(static_cast<size_t>(voxels));
  for (int64_t i = 0; i < voxels; ++i) {
    double v = read(header->data, i);
    if (scaled) v = v * h.scl_slope + h.scl_inter;
    if (!std::isfinite(v) || std::abs(v) > 3.4e38)
      LADDER_FAIL(path, ": voxel ", i, " is ", v, " after scl_slope ", h.scl_slope, " and scl_inter ", h.scl_inter,
                  " (beyond float32)");
    volume.voxels[static_cast<size_t>(i)] = static_cast<float>(v);
  }
  if (std::isfinite(h.cal_min) && std::isfinite(h.cal_max) && h.cal_min < h.cal_max)
    volume.display_range = std::make_pair(h.cal_min, h.cal_max);
  return volume;
}

void write_nifti(const std::string& path, const Volume& volume) {
  LADDER_CHECK(is_nifti_name(path), "write_nifti: ", path, " is not named .nii or .nii.gz");
  LADDER_CHECK(static_cast<int64_t>(volume.voxels.size()) == volume.nx * volume.ny * volume.nz,
               "write_nifti: ", volume.voxels.size(), " voxels for ", volume.nx, "x", volume.ny, "x", volume.nz);
  const int64_t dims[8] = {3, volume.nx, volume.ny, volume.nz, 1, 1, 1, 1};
  NiftiImage image(nifti_make_new_nim(dims, DT_FLOAT32, 1));
  if (!image) LADDER_FAIL(path, ": cannot make a NIfTI image of ", volume.nx, "x", volume.ny, "x", volume.nz);
  std::memcpy(image->data, volume.voxels.data(), volume.voxels.size() * sizeof(float));
  if (volume.display_range) {
    image->cal_min = volume.display_range->first;
    image->cal_max = volume.display_range->second;
  }
  if (nifti_set_filenames(image.get(), path.c_str(), 0, 1) != 0) LADDER_FAIL(path, ": not a NIfTI file name");
  image->nifti_type = NIFTI_FTYPE_NIFTI1_1;
  std::error_code error;
  std::filesystem::remove(path, error);
  nifti_image_write(image.get());
  if (!std::filesystem::exists(path, error)) LADDER_FAIL(path, ": cannot write the NIfTI file");
}

SliceAxis parse_slice_axis(const std::string& text) {
  if (text == "sagittal") return SliceAxis::kSagittal;
  if (text == "coronal") return SliceAxis::kCoronal;
  if (text == "axial") return SliceAxis::kAxial;
  throw UsageError("pack: --axis " + text + ": expected axial, coronal or sagittal");
}

const char* slice_axis_name(SliceAxis axis) {
  switch (axis) {
    case SliceAxis::kSagittal: return "sagittal";
    case SliceAxis::kCoronal: return "coronal";
    case SliceAxis::kAxial: return "axial";
  }
  return "?";
}

SliceSelection parse_slice_selection(const std::string& text) {
  SliceSelection selection;
  if (text == "all") return selection;
  const auto number = [&](const std::string& digits) {
    char* end = nullptr;
    const long long k = std::strtoll(digits.c_str(), &end, 10);
    LADDER_CHECK_USAGE(!digits.empty() && *end == '\0' && k >= 1 && k <= kMaxVolumeSide, "pack: --slices ", text,
                       ": expected all, every:K or middle:N with K, N in 1..", kMaxVolumeSide);
    return static_cast<int64_t>(k);
  };
  if (text.rfind("every:", 0) == 0) return {SliceSelection::Kind::kEvery, number(text.substr(6))};
  if (text.rfind("middle:", 0) == 0) return {SliceSelection::Kind::kMiddle, number(text.substr(7))};
  throw UsageError("pack: --slices " + text + ": expected all, every:K or middle:N");
}

std::vector<int64_t> chosen_slices(int64_t count, const SliceSelection& selection) {
  std::vector<int64_t> chosen;
  if (selection.kind == SliceSelection::Kind::kMiddle) {
    const int64_t n = std::min(count, selection.k);
    for (int64_t s = (count - n) / 2; s < (count - n) / 2 + n; ++s) chosen.push_back(s);
    return chosen;
  }
  const int64_t step = selection.kind == SliceSelection::Kind::kEvery ? selection.k : 1;
  for (int64_t s = 0; s < count; s += step) chosen.push_back(s);
  return chosen;
}

std::vector<float> extract_slice(const Volume& v, SliceAxis axis, int64_t index, int64_t& height, int64_t& width) {
  const auto at = [&](int64_t x, int64_t y, int64_t z) { return v.voxels[static_cast<size_t>((z * v.ny + y) * v.nx + x)]; };
  std::vector<float> slice;
  if (axis == SliceAxis::kAxial) {  // (y, x)
    height = v.ny, width = v.nx;
    slice.resize(static_cast<size_t>(height * width));
    std::copy_n(v.voxels.begin() + index * v.nx * v.ny, height * width, slice.begin());
  } else if (axis == SliceAxis::kCoronal) {  // (z, x)
    height = v.nz, width = v.nx;
    slice.resize(static_cast<size_t>(height * width));
    for (int64_t z = 0; z < v.nz; ++z)
      for (int64_t x = 0; x < v.nx; ++x) slice[static_cast<size_t>(z * width + x)] = at(x, index, z);
  } else {  // (z, y)
    height = v.nz, width = v.ny;
    slice.resize(static_cast<size_t>(height * width));
    for (int64_t z = 0; z < v.nz; ++z)
      for (int64_t y = 0; y < v.ny; ++y) slice[static_cast<size_t>(z * width + y)] = at(index, y, z);
  }
  return slice;
}

std::vector<float> make_square(const std::vector<float>& slice, int64_t height, int64_t width, bool pad, float fill,
                               int64_t& side) {
  side = pad ? std::max(height, width) : std::min(height, width);
  if (side == height && side == width) return slice;
  std::vector<float> square(static_cast<size_t>(side * side), fill);
  // Offsets of the slice in the square (padding) or of the square in the slice (cropping).
  const int64_t dy = (side - height) / 2, dx = (side - width) / 2;
  for (int64_t y = 0; y < side; ++y)
    for (int64_t x = 0; x < side; ++x) {
      const int64_t sy = y - dy, sx = x - dx;  // padding: negative offsets read outside → fill
      if (pad) {
        if (sy >= 0 && sy < height && sx >= 0 && sx < width)
          square[static_cast<size_t>(y * side + x)] = slice[static_cast<size_t>(sy * width + sx)];
      } else {
        square[static_cast<size_t>(y * side + x)] =
            slice[static_cast<size_t>((y + (height - side) / 2) * width + x + (width - side) / 2)];
      }
    }
  return square;
}

}  // namespace ladder::io
