// Why this file exists: FID and KID score a generated set against a reference set, which the
// user names once by a path of one of three kinds: an image store (its images at one level,
// the common case), a feature file (features extracted earlier or by another tool), or
// pytorch-fid's .npz statistics (FID only: they hold no features for KID). Extracting a
// store's features costs minutes at scale, so they are cached beside the store, keyed by the
// store (path, size, modification time), the level, the input mode and the weights; a stale
// cache is never read, only replaced.
#pragma once

#include <optional>
#include <string>

#include "comm/communicator.h"
#include "eval/feature_statistics.h"
#include "eval/inception_features.h"
#include "eval/kernel_inception_distance.h"
#include "io/feature_file.h"

namespace ladder::eval {

struct ReferenceSet {
  io::FeatureSet features;        // (N, D); empty (count 0) for .npz statistics
  FeatureStatistics statistics;   // of the features, or as read from the .npz
  std::string description;        // where it came from, for the log
};

// The cache file of a store's features at `resolution` for `network` ("<store>.fid-R-mode-key.h5").
std::string reference_cache_path(const std::string& store, int resolution, const InceptionFeatures& network);

// A collective: every rank calls it and gets the same set. For an image store, every image of
// level `resolution` (0: the largest) through `network` (null: a UsageError that the store
// needs InceptionV3 weights); rank 0 reads or writes the cache (a cache it cannot write is a
// warning, not an error).
ReferenceSet load_reference(const std::string& path, int resolution, Communicator& comm, InceptionFeatures* network);

struct SetScores {
  double fid = 0;
  std::optional<KidScore> kid;  // absent against .npz statistics
};

// FID (from the features when the reference has them, else from statistics) and KID, with the
// KID subset size cut to the smaller set unless `subset_size_given`.
SetScores score_against(const io::FeatureSet& generated, const ReferenceSet& reference, KidSettings kid,
                        bool subset_size_given = false);

}  // namespace ladder::eval
