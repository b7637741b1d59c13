// Why this file exists: fuzzes the HDF5 image store reader (io/image_store.cpp over
// io/hdf5.cpp) with whole files: a format-1 store (`ladder pack`) and a foreign h5py
// dataset named "images". The bytes are written to a file and opened the way the trainer
// and `ladder inspect` open them: structure checks, every checksum (verify_all), then the
// shards of every rung a rank would load. A damaged file must end in ladder::Error; a crash
// inside libhdf5 itself is recorded in tests/fuzz/findings-hdf5/ (see docs/FUZZING.md).
#include <cstdint>

#include "core/check.h"
#include "fuzz_support.h"
#include "hdf5_check.h"
#include "io/image_store.h"

namespace {

void read_store(const std::string& path, const std::string& dataset) {
  using namespace ladder;
  try {
    io::ImageStoreReader reader(path, dataset);
    reader.verify_all();
    const io::StoreInfo& info = reader.info();
    std::vector<int> resolutions;
    for (const io::StoreLevel& level : info.levels) resolutions.push_back(level.resolution);
    if (info.foreign) resolutions.push_back(info.height / 2);  // a box-filtered rung
    for (int resolution : resolutions) {
      if (resolution <= 0 || !reader.has_resolution(resolution)) continue;
      reader.load_shard(resolution, 0, 1);
      reader.load_shard(resolution, 1, 2);
      reader.load_shard(resolution, 0, 1, data::ImageRange{0, 1});
    }
    reader.name(0);
    reader.name(info.count);
  } catch (const Error&) {
    // the documented outcome of a damaged or foreign file
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ladder::fuzz::write_file(
      ladder::fuzz::scratch() / "store.h5", std::string(reinterpret_cast<const char*>(data), size));
  read_store(path, "");
  read_store(path, "images");
  ladder::fuzz::require_hdf5_closed("fuzz_image_store");
  return 0;
}
