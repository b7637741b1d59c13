// Why this file exists: FID and KID during training, the numbers users compare models by
// (eval.count > 0). At the end of every rung and every run.eval_every steps, the ranks make the
// rung's first eval.count images between them (stage 1: reconstructions; stage 2: samples,
// noise keyed by image index), one image per pass, quantize them to uint8 as a saved PNG
// would be, and extract InceptionV3 features, gathered in image order: the scores are the same
// bits on any world size. They are scored against eval.reference (stage 1 without one: the
// originals of the same images, i.e. rFID), whose features are extracted once per rung.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.h"
#include "config/config.h"
#include "data/image_shard.h"
#include "eval/inception_features.h"
#include "eval/reference_set.h"
#include "train/training_task.h"

namespace ladder {

class TrainingEvaluation {
 public:
  // Loads the InceptionV3 weights (eval.weights): a UsageError that says how to make a missing
  // file. gpu: the network runs on the rank's GPU (a GPU run), else on its CPU.
  TrainingEvaluation(const Config& config, bool gpu);

  bool due(int64_t step, bool rung_end) const {
    return rung_end || (config_.run.eval_every > 0 && step % config_.run.eval_every == 0);
  }
  // A collective. fid, kid_mean, kid_std (absent against .npz statistics), eval_count and
  // eval_seconds of the rung's images (`rung_images` of them; this rank holds `shard`); empty
  // when the task cannot make images.
  std::vector<std::pair<std::string, double>> run(TrainingTask& task, const data::ImageShard& shard,
                                                  int64_t rung_images, int resolution, Communicator& comm);
  // "N images at RxR, mode M, <network>" of the last evaluation, for the log and metrics.
  const std::string& description() const { return description_; }
  const char* mode() const { return inception_input_name(network_.mode()); }
  const std::string& network_description() const { return network_.description(); }

 private:
  const Config& config_;
  eval::InceptionFeatures network_;
  int reference_resolution_ = 0;  // the rung whose reference_ is held
  eval::ReferenceSet reference_;
  std::string description_;
};

}  // namespace ladder
