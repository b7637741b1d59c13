// Why this file exists: InceptionV3 features of strided shares, gathered in image order
// (eval/inception_features.h).
#include "eval/inception_features.h"

#include "comm/image_order.h"

namespace ladder::eval {

InceptionFeatures::InceptionFeatures(const std::string& weights, InceptionInput mode)
    : network_(std::make_unique<InceptionV3<CpuBackend>>(backend_)), mode_(mode) {
  network_->load_or_randomize(weights);
  description_ = "pytorch-fid InceptionV3 pool3, " +
                 (weights.rfind("random", 0) == 0 ? weights + " weights: a sanity check, not comparable with "
                                                             "published scores"
                                                  : "weights " + weights);
}

io::FeatureSet InceptionFeatures::gather(Communicator& comm, const uint8_t* held, int64_t held_count, int side,
                                         int channels, int64_t total) {
  std::vector<float> mine;  // (held, 2048)
  network_->features(held, static_cast<int>(held_count), side, side, channels, mode_, mine);
  io::FeatureSet set;
  set.count = total;
  set.dims = InceptionV3<CpuBackend>::kFeatures;
  set.values = gather_in_image_order(comm, mine.data(), held_count, set.dims, total);
  set.network = description_;
  set.mode = inception_input_name(mode_);
  return set;
}

}  // namespace ladder::eval
