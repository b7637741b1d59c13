// Why this file exists: fuzzes loading a checkpoint (io/checkpoint_files.cpp): the shard
// files (HDF5) behind a manifest, as `--resume`, `train.init_from` and `ladder inspect` read
// them. The input is a manifest, then for each shard it lists "\n%%\n" and the bytes of
// that shard file (rank order). The manifest's shard sizes and XXH3-64 sums are set to match
// the files (and its own checksum re-stamped), so that mutations of a shard reach its
// structure checks and reads instead of stopping at the checksum. Then: verify_checkpoint, the reads
// of a resume (every array, whole and in part) and a warm start into a parameter table built
// from the manifest's. A bad checkpoint must end in ladder::Error.
#include <cstdint>
#include <filesystem>
#include <vector>

#include "core/check.h"
#include "core/params.h"
#include "fuzz_support.h"
#include "hdf5_check.h"
#include "io/checkpoint_files.h"
#include "manifest_stamp.h"
#include "train/resume.h"

namespace {

constexpr int64_t kMaxParameters = int64_t{1} << 22;  // the target's own buffers stay small

void load(const std::string& dir, const ladder::io::Manifest& manifest) {
  using namespace ladder;
  try {
    const io::Manifest verified = io::verify_checkpoint(dir);
    if (verified.padded_count > kMaxParameters) return;
    std::vector<float> values(static_cast<size_t>(verified.padded_count));
    const std::vector<Range> whole = {Range{0, verified.padded_count}};
    const std::vector<Range> part = {Range{verified.padded_count / 2, verified.padded_count}};
    for (const char* array : {"master", "exp_avg", "exp_avg_sq", "ema"}) {
      if (std::string(array) == "ema" && !io::has_ema(verified)) continue;
      io::read_checkpoint_ranges(dir, verified, array, whole, values.data());
      io::read_checkpoint_ranges(dir, verified, array, part, values.data());
    }
    ParamStore params;
    for (const io::ParamRecord& record : manifest.params) {
      int64_t numel = 1;  // the model's table: shapes that match the manifest's sizes
      for (int64_t d : record.shape) numel = (d > kMaxParameters || numel > kMaxParameters) ? kMaxParameters + 1 : numel * d;
      if (numel != record.numel) return;
      params.add(record.name, record.shape, ParamInit::kZeros, 1, false);
    }
    params.allocate();
    warm_start(dir, params);
    warm_start_buffers(dir, verified.buffers);  // a model with the checkpoint's own buffers
    model_flags_of(dir);
  } catch (const Error&) {
    // the documented outcome of a damaged checkpoint
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ladder;
  namespace fs = std::filesystem;
  const std::vector<std::string> parts = fuzz::split_input(data, size, 2);
  const std::string stamped = fuzz::restamp_manifest(parts[0]);
  io::Manifest manifest;
  try {
    manifest = io::parse_manifest(stamped, "manifest.json");
  } catch (const Error&) {
    return 0;  // fuzz_checkpoint_manifest covers the manifest itself
  }
  if (manifest.padded_count > kMaxParameters || manifest.shards.size() > 8) return 0;
  const fs::path dir = fuzz::scratch() / io::step_directory_name(manifest.step);
  fs::remove_all(dir);
  const std::vector<std::string> shards = fuzz::split_input(
      reinterpret_cast<const uint8_t*>(parts[1].data()), parts[1].size(), manifest.shards.size());
  for (size_t i = 0; i < shards.size(); ++i) {
    io::ShardRecord& shard = manifest.shards[i];
    const std::string path = fuzz::write_file(dir / shard.file, shards[i]);
    const io::WrittenFile written = io::hash_file(path);
    shard.bytes = written.bytes;
    shard.xxh3 = written.xxh3;
  }
  fuzz::write_file(dir / io::kManifestFile, io::manifest_to_json(manifest));
  load(dir.string(), manifest);
  ladder::fuzz::require_hdf5_closed("fuzz_checkpoint");
  fs::remove_all(dir);
  return 0;
}
