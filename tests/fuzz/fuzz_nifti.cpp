// Why this file exists: fuzzes the volume path of `ladder pack --nifti` (io/volume.cpp over
// libnifti2 and zlib) with whole files: the bytes are written as a .nii (read as is) and as a
// .nii.gz (znzlib reads a plain file through gzopen too; a real gzip input is decompressed),
// decoded, and sliced across every axis and made square the way pack does. Truncated files,
// dimensions that overflow, data sizes the file cannot hold and decompression bombs must end
// in ladder::Error before any large allocation; every other exception or signal is a finding.
#include <cstdint>

#include "core/check.h"
#include "fuzz_support.h"
#include "io/volume.h"

namespace {

void slice_volume(const std::string& path) {
  using namespace ladder;
  try {
    const io::Volume volume = io::read_nifti(path);
    for (io::SliceAxis axis : {io::SliceAxis::kAxial, io::SliceAxis::kCoronal, io::SliceAxis::kSagittal}) {
      const int64_t count = axis == io::SliceAxis::kSagittal ? volume.nx
                            : axis == io::SliceAxis::kCoronal ? volume.ny : volume.nz;
      for (int64_t s : io::chosen_slices(count, io::SliceSelection{io::SliceSelection::Kind::kMiddle, 2})) {
        int64_t height = 0, width = 0, side = 0;
        const std::vector<float> slice = io::extract_slice(volume, axis, s, height, width);
        io::make_square(slice, height, width, true, 0.0f, side);
        io::make_square(slice, height, width, false, 0.0f, side);
      }
    }
  } catch (const Error&) {
    // the documented outcome of a damaged, hostile or unsupported file
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  slice_volume(ladder::fuzz::write_file(ladder::fuzz::scratch() / "v.nii", bytes));
  slice_volume(ladder::fuzz::write_file(ladder::fuzz::scratch() / "v.nii.gz", bytes));
  return 0;
}
