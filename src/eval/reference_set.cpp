// Why this file exists: reference sets and the scores against them (eval/reference_set.h).
#include "eval/reference_set.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <filesystem>

#include <xxhash.h>

#include "core/check.h"
#include "core/log.h"
#include "eval/frechet_distance.h"
#include "io/image_store.h"
#include "io/npz_statistics.h"

namespace fs = std::filesystem;

namespace ladder::eval {
namespace {

// What identifies the store's contents without reading them: its absolute path, size and
// modification time (a repacked store gets a new time).
std::string store_identity(const std::string& store) {
  std::error_code error;
  const fs::path absolute = fs::absolute(store, error);
  const auto size = fs::file_size(store, error);
  const auto time = fs::last_write_time(store, error).time_since_epoch();
  return absolute.string() + "|" + std::to_string(size) + "|" +
         std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(time).count());
}

FeatureStatistics statistics_of(const io::FeatureSet& set) {
  return feature_statistics(set.values.data(), set.count, set.dims);
}

// Rank 0 reads the cache when it is there; every rank learns whether it was, and gets its features.
std::optional<io::FeatureSet> read_cache(const std::string& cache, Communicator& comm) {
  double shape[2] = {0, 0};  // count, dims; 0: no usable cache
  io::FeatureSet set;
  if (comm.rank() == 0 && io::is_feature_file(cache)) {
    try {
      set = io::read_feature_set(cache);
      shape[0] = static_cast<double>(set.count), shape[1] = set.dims;
    } catch (const Error& e) {
      log_warning("reference features: ignoring the damaged cache ", cache, ": ", e.what());
    }
  }
  comm.broadcast(shape, 2, DType::kF64, 0);
  if (shape[0] == 0) return std::nullopt;
  set.count = static_cast<int64_t>(shape[0]), set.dims = static_cast<int>(shape[1]);
  set.values.resize(static_cast<size_t>(set.count * set.dims));
  comm.broadcast(set.values.data(), static_cast<int64_t>(set.values.size()), DType::kF32, 0);
  return set;
}

}  // namespace

std::string reference_cache_path(const std::string& store, int resolution, const InceptionFeatures& network) {
  const std::string key = store_identity(store) + "|" + std::to_string(resolution) + "|" +
                          inception_input_name(network.mode()) + "|" + network.weights_identity();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(key.data(), key.size())));
  return store + ".fid-" + std::to_string(resolution) + "-" + inception_input_name(network.mode()) + "-" + hex + ".h5";
}

ReferenceSet load_reference(const std::string& path, int resolution, Communicator& comm, InceptionFeatures* network) {
  ReferenceSet reference;
  if (io::is_npz_path(path)) {
    const io::NpzStatistics npz = io::read_npz_statistics(path);
    reference.statistics.count = 0;  // unknown
    reference.statistics.dims = npz.dims;
    reference.statistics.mean = npz.mu;
    reference.statistics.covariance = npz.sigma;
    reference.description = path + " (pytorch-fid statistics: FID only)";
    return reference;
  }
  if (io::is_feature_file(path)) {
    reference.features = io::read_feature_set(path);
    reference.statistics = statistics_of(reference.features);
    const io::FeatureSet& f = reference.features;
    reference.description = path + " (" + std::to_string(f.count) + " feature vectors" +
                            (f.network.empty() ? "" : "; " + f.network) + (f.mode.empty() ? "" : ", mode " + f.mode) +
                            ")";
    return reference;
  }
  const io::ImageStoreReader store(path);  // UsageError naming the file when it is neither
  LADDER_CHECK_USAGE(network != nullptr, path, ": an image store as the reference needs InceptionV3 weights (--weights)");
  if (resolution == 0)
    for (const io::StoreLevel& level : store.info().levels) resolution = std::max(resolution, level.resolution);
  LADDER_CHECK_USAGE(store.has_resolution(resolution), path, ": no images at resolution ", resolution,
                     " for the FID reference");
  const int64_t count = store.info().count;
  LADDER_CHECK_USAGE(count >= 2, path, ": ", count, " images; an FID reference needs at least 2");
  const std::string cache = reference_cache_path(path, resolution, *network);
  if (std::optional<io::FeatureSet> cached = read_cache(cache, comm)) {
    reference.features = std::move(*cached);
    reference.description = path + " at " + std::to_string(resolution) + " px, " + std::to_string(count) +
                            " images, " + network->description() + ", mode " + inception_input_name(network->mode()) +
                            " (features from the cache " + cache + ")";
  } else {
    const data::ImageShard shard = store.load_shard(resolution, comm.rank(), comm.world(), {0, count});
    reference.features = network->gather(comm, data::images_as_bytes(shard, 0, shard.count()).data(), shard.count(),
                                         resolution, shard.channels, count);
    reference.description = path + " at " + std::to_string(resolution) + " px, " + std::to_string(count) + " images, " +
                            network->description() + ", mode " + inception_input_name(network->mode());
    if (comm.rank() == 0) {
      try {
        io::write_feature_set(cache, reference.features);
        reference.description += " (features cached in " + cache + ")";
      } catch (const Error& e) {
        log_warning("reference features: not cached (", e.what(), "); they will be extracted again next time");
      }
    }
  }
  reference.statistics = statistics_of(reference.features);
  return reference;
}

SetScores score_against(const io::FeatureSet& generated, const ReferenceSet& reference, KidSettings kid,
                        bool subset_size_given) {
  SetScores scores;
  const io::FeatureSet& ref = reference.features;
  LADDER_CHECK_USAGE(reference.statistics.dims == generated.dims, reference.description, ": ",
                     reference.statistics.dims, "-d features, but the scored set has ", generated.dims);
  const FeatureStatistics statistics = statistics_of(generated);
  if (ref.count == 0) {
    scores.fid = frechet_distance(statistics, reference.statistics);
    return scores;
  }
  scores.fid = frechet_distance(generated.values.data(), statistics, ref.values.data(), reference.statistics);
  if (!subset_size_given) kid.subset_size = std::min({kid.subset_size, generated.count, ref.count});
  scores.kid = kernel_inception_distance(generated.values.data(), generated.count, ref.values.data(), ref.count,
                                         ref.dims, kid);
  return scores;
}

}  // namespace ladder::eval
