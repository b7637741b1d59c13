// Why this file exists: InceptionV3 features of strided shares, gathered in image order
// (eval/inception_features.h).
#include "eval/inception_features.h"

#include <cstdio>
#include <filesystem>

#include "comm/image_order.h"
#include "core/check.h"
#include "core/work_progress.h"
#include "io/checkpoint_files.h"

namespace ladder::eval {

InceptionFeatures::InceptionFeatures(const std::string& weights, InceptionInput mode, bool gpu) : mode_(mode) {
  const bool random = weights == "random" || weights.rfind("random:", 0) == 0;
  std::error_code error;
  LADDER_CHECK_USAGE(random || std::filesystem::is_regular_file(weights, error), "InceptionV3 weights ", weights,
                     ": no such file (ladder never downloads: make it with `python3 launch/fid_weights.py --out ",
                     weights, "` from pytorch-fid's pt_inception-2015-12-05 release, or use random for a sanity check)");
  network_ = make_inception_network(weights, gpu);
  if (random) {
    weights_identity_ = weights == "random" ? "random:0" : weights;
  } else {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(io::hash_file(weights).xxh3));
    weights_identity_ = std::string("xxh3:") + hex;
  }
  weights_identity_ += gpu ? "@cuda" : "@cpu";  // the two devices' features differ in the last bits
  description_ = std::string("pytorch-fid InceptionV3 pool3") + (gpu ? " on the GPU, " : ", ") +
                 (random ? weights + " weights: a sanity check, not comparable with published scores"
                         : "weights " + weights);
}

io::FeatureSet InceptionFeatures::gather(Communicator& comm, const uint8_t* held, int64_t held_count, int side,
                                         int channels, int64_t total) {
  std::vector<float> mine;  // (held, 2048)
  WorkProgress progress("InceptionV3 features", held_count);
  const int64_t per_image = int64_t(side) * side * channels;
  for (int64_t i = 0; i < held_count; ++i) {
    network_->features(held + i * per_image, 1, side, side, channels, mode_, mine);
    progress.advance(i + 1);
  }
  io::FeatureSet set;
  set.count = total;
  set.dims = kInceptionFeatures;
  set.values = gather_in_image_order(comm, mine.data(), held_count, set.dims, total);
  set.network = description_;
  set.mode = inception_input_name(mode_);
  return set;
}

}  // namespace ladder::eval
