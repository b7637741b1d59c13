// Why this file exists: feature vectors of a set of images (e.g. InceptionV3's 2048-d pool3)
// kept in a file, so that FID and KID can be computed between sets extracted elsewhere or
// earlier, and compared with other tools. An HDF5 file with one dataset `/features` (N, D) of
// any float type (h5py's float32 or float64; read as float32) and optional root attributes
// `network` and `mode` (what extracted them), as written by ladder or by
// `h5py.File(f, "w")["features"] = array`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ladder::io {

struct FeatureSet {
  int64_t count = 0;          // N
  int dims = 0;               // D
  std::vector<float> values;  // (N, D) row-major
  std::string network;        // e.g. "pytorch-fid InceptionV3 pool3"; "" when unknown
  std::string mode;           // e.g. "pytorch_fid", "tf1"; "" when unknown
};

// UsageError naming the file when it is not HDF5, has no /features, or /features is not a
// 2-D float dataset of at least 2 rows and 1 to 65,536 columns.
FeatureSet read_feature_set(const std::string& path);
// Whether `path` is an HDF5 file with a /features dataset (false for anything else, missing
// files included).
bool is_feature_file(const std::string& path);
// Written to a temporary name and renamed, so an existing file is replaced whole or not at all.
void write_feature_set(const std::string& path, const FeatureSet& set);

}  // namespace ladder::io
