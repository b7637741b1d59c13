// Why this file exists: fuzzes the HDF5 latent store reader (io/latent_store.cpp), the input
// of stage 2 (`ladder encode` writes it): the bytes are written to a file, recognised
// (is_latent_store, scale_factor_of, as `ladder inspect` and `ladder sample` do), opened,
// fully verified, and every resolution's shard loaded as the trainer would. A damaged file
// must end in ladder::Error.
#include <cstdint>

#include "core/check.h"
#include "fuzz_support.h"
#include "hdf5_check.h"
#include "io/latent_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ladder;
  const std::string path = fuzz::write_file(fuzz::scratch() / "latents.h5",
                                            std::string(reinterpret_cast<const char*>(data), size));
  try {
    io::is_latent_store(path);
    io::scale_factor_of(path);
    const io::LatentStoreReader reader(path);
    reader.verify_all();
    for (int resolution : reader.info().resolutions) {
      reader.load_shard(resolution, 0, 1);
      reader.load_shard(resolution, 1, 2);
      reader.load_shard(resolution, 0, 1, data::ImageRange{0, 1});
    }
  } catch (const Error&) {
    // the documented outcome of a damaged file
  }
  ladder::fuzz::require_hdf5_closed("fuzz_latent_store");
  return 0;
}
