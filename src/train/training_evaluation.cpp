// Why this file exists: FID and KID during training (train/training_evaluation.h).
#include "train/training_evaluation.h"

#include <algorithm>

#include "comm/image_order.h"
#include "core/clock.h"
#include "core/log.h"
#include "io/image_grid.h"

namespace ladder {

TrainingEvaluation::TrainingEvaluation(const Config& config, bool gpu)
    : config_(config),
      network_(config.eval.weights, inception_input_named(config.eval.mode, "config: eval.mode"), gpu) {}

std::vector<std::pair<std::string, double>> TrainingEvaluation::run(TrainingTask& task, const data::ImageShard& shard,
                                                                    int64_t rung_images, int resolution,
                                                                    Communicator& comm) {
  if (!every_rank_can_make_images(task, comm)) return {};
  const double start = now_seconds();
  const int64_t count = std::min(config_.eval.count, rung_images);
  const int64_t held = images_held(count, comm.rank(), comm.world());
  // One image per pass: no image depends on which others share its batch.
  const TensorF made = task.make_images(shard, held, comm.rank(), comm.world(), 1, ImagePurpose::kEvaluation);
  const int channels = held > 0 ? static_cast<int>(made.shape().c) : shard.channels;
  std::vector<uint8_t> saved(static_cast<size_t>(made.numel()));  // as a PNG of them would hold
  for (int64_t e = 0; e < made.numel(); ++e) saved[e] = data::unit_to_byte(made[e]);
  const io::FeatureSet generated = network_.gather(comm, saved.data(), held, resolution, channels, count);

  if (reference_resolution_ != resolution) {
    if (config_.eval.reference.empty()) {  // stage 1: the originals of the same images
      LADDER_CHECK(task.reconstructs(), "eval.reference is required for this model");
      reference_.features =
          network_.gather(comm, data::images_as_bytes(shard, 0, held).data(), held, resolution, shard.channels, count);
      reference_.statistics = eval::feature_statistics(reference_.features.values.data(), count, reference_.features.dims);
      reference_.description = "the originals of the same images (rFID)";
    } else {
      reference_ = eval::load_reference(config_.eval.reference, resolution, comm, &network_);
    }
    reference_resolution_ = resolution;
    log_info("FID reference at ", resolution, "x", resolution, ": ", reference_.description);
  }
  const eval::SetScores scores = eval::score_against(generated, reference_, eval::KidSettings{});
  const double seconds = now_seconds() - start;
  description_ = detail::concat(count, task.reconstructs() ? " reconstructions" : " samples", " at ", resolution, "x",
                                resolution, ", mode ", mode(), ", ", network_.description());
  std::vector<std::pair<std::string, double>> values = {{"fid", scores.fid}};
  if (scores.kid) values.insert(values.end(), {{"kid_mean", scores.kid->mean}, {"kid_std", scores.kid->std}});
  values.insert(values.end(), {{"eval_count", static_cast<double>(count)}, {"eval_seconds", seconds}});
  return values;
}

}  // namespace ladder
