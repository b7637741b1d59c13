// Why this file exists: users of pytorch-fid keep their reference statistics as .npz files
// (`python -m pytorch_fid --save-stats`: numpy's savez of `mu` (D) and `sigma` (D, D)), and
// FID against those numbers should need no re-extraction. An .npz is a zip archive of .npy
// arrays; libzip opens the archive (stored or deflated members), and the .npy header is read
// here (little-endian float32 or float64, C or Fortran order).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ladder::io {

struct NpzStatistics {
  int dims = 0;
  std::vector<double> mu;     // (D)
  std::vector<double> sigma;  // (D, D) row-major
};

// Whether `path` names an .npz file (by its extension).
bool is_npz_path(const std::string& path);

// mu and sigma of a pytorch-fid statistics file. UsageError naming the file and what is wrong
// (not a zip archive, a member missing, an unsupported dtype, shapes that do not agree).
NpzStatistics read_npz_statistics(const std::string& path);

}  // namespace ladder::io
