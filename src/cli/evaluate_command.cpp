// Why this file exists: `ladder evaluate`. Two modes today:
//   --features A.h5 --reference B.h5: FID (pytorch-fid's definition, eval/frechet_distance.h)
//     and KID (torch-fidelity's, eval/kernel_inception_distance.h) between two feature files;
//   --store S.h5 --weights W: InceptionV3 pool3 features of a store's images
//     (model/inception_v3.h), split across the ranks of the job and gathered in image order,
//     written with --save-features and scored against --reference when given.
#include "cli/evaluate_command.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <iostream>

#include "cli/arguments.h"
#include "comm/communicator.h"
#include "comm/image_order.h"
#include "core/check.h"
#include "core/context.h"
#include "data/image_shard.h"
#include "eval/frechet_distance.h"
#include "eval/kernel_inception_distance.h"
#include "io/feature_file.h"
#include "io/image_store.h"
#include "model/cpu_backend.h"
#include "model/inception_v3.h"

namespace ladder {

std::string evaluate_usage() {
  return "usage: ladder evaluate --features A.h5 --reference B.h5 [KID options]\n"
         "       ladder evaluate --store S.h5 --weights W.safetensors [--mode pytorch_fid|tf1]\n"
         "                       [--resolution R] [--count N] [--save-features F.h5] [--reference B.h5]\n"
         "\n"
         "FID and KID between two sets of feature vectors, each an HDF5 file with /features (N, D)\n"
         "float (e.g. InceptionV3 pool3 features from pytorch-fid or torch-fidelity, written with\n"
         "h5py). FID = |mu_a - mu_b|^2 + tr S_a + tr S_b - 2 tr sqrt(S_a S_b), covariances with N - 1,\n"
         "in double; with fewer images than dimensions the trace comes from singular values of\n"
         "the centred features. KID: the unbiased MMD^2 with kernel (x.y/D + 1)^3 over S subsets of\n"
         "M images of each set, drawn as torch-fidelity draws them, as mean and std.\n"
         "With --store, the features are the 2048-d pool3 of pytorch-fid's InceptionV3 (weights W\n"
         "with pytorch-fid's names) for the first N images of level R of an image store, one image\n"
         "per pass; under mpirun the ranks split the images and the result does not depend on\n"
         "their number. Scoring a checkpoint's reconstructions or samples is not available yet.\n"
         "\n"
         "options:\n"
         "  --features A.h5        the feature set to score\n"
         "  --reference B.h5       the reference feature set (same D)\n"
         "  --store S.h5           extract features of this image store's images instead\n"
         "  --weights W            InceptionV3 weights (safetensors, pytorch-fid's names)\n"
         "  --mode M               pytorch_fid (u8/255, PyTorch bilinear to 299, 2x - 1; default) or\n"
         "                         tf1 (TF1 bilinear to 299, (x - 128)/128: torch-fidelity, the LDM paper)\n"
         "  --resolution R         the store's level (default: the largest)\n"
         "  --count N              the first N images (default: all)\n"
         "  --save-features F.h5   write the extracted features\n"
         "  --kid-subsets S        KID subsets (default 100)\n"
         "  --kid-subset-size M    images per KID subset (default 1000, or the smaller set's size)\n"
         "  --kid-seed K           seed of the subset draws (default 2020, torch-fidelity's)\n"
         "  --help                 this text\n";
}

namespace {

// The InceptionV3 features of the first `count` images of level `resolution` of a store, every
// rank extracting its share, gathered in image order on every rank.
io::FeatureSet store_features(const std::string& store_path, const std::string& weights, InceptionInput mode,
                              int resolution, int64_t count) {
  const std::unique_ptr<Communicator> comm = make_communicator(CommSettings{"mpi", 300});
  const io::ImageStoreReader store(store_path);
  const io::StoreInfo& info = store.info();
  if (resolution == 0)
    for (const io::StoreLevel& level : info.levels) resolution = std::max(resolution, level.resolution);
  LADDER_CHECK_USAGE(store.has_resolution(resolution), store_path, ": no images at resolution ", resolution);
  count = std::min(count, info.count);
  LADDER_CHECK_USAGE(count >= 2, "evaluate: ", store_path, " gives ", count, " images; FID needs at least 2");
  const data::ImageShard shard = store.load_shard(resolution, comm->rank(), comm->world(), {0, count});
  LADDER_CHECK_USAGE(shard.value_bytes == 1, store_path, ": evaluate reads uint8 images");
  CpuBackend backend;
  InceptionV3<CpuBackend> network(backend);
  network.load(weights);
  std::vector<float> mine;  // (held, 2048)
  network.features(shard.pixels.data(), static_cast<int>(shard.count()), resolution, resolution, shard.channels, mode,
                   mine);
  io::FeatureSet set;
  set.count = count;
  set.dims = InceptionV3<CpuBackend>::kFeatures;
  set.values = gather_in_image_order(*comm, mine.data(), shard.count(), set.dims, count);
  set.network = "pytorch-fid InceptionV3 pool3";
  set.mode = inception_input_name(mode);
  return set;
}

}  // namespace

int evaluate_command(const std::vector<std::string>& args) {
  std::string features_path, reference_path, store_path, weights, save_path, mode_name = "pytorch_fid";
  int resolution = 0;
  int64_t count = INT64_MAX;
  eval::KidSettings kid;
  bool subset_size_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << evaluate_usage();
      return 0;
    }
    auto value = [&]() -> const std::string& { return option_value(args, i, "evaluate"); };
    if (arg == "--features") features_path = value();
    else if (arg == "--reference") reference_path = value();
    else if (arg == "--store") store_path = value();
    else if (arg == "--weights") weights = value();
    else if (arg == "--mode") mode_name = value();
    else if (arg == "--save-features") save_path = value();
    else if (arg == "--resolution") resolution = static_cast<int>(std::min<int64_t>(positive_integer(value(), "evaluate", arg), 1 << 20));
    else if (arg == "--count") count = positive_integer(value(), "evaluate", arg);
    else if (arg == "--kid-subsets") kid.subsets = static_cast<int>(
        std::min<int64_t>(positive_integer(value(), "evaluate", arg), 1000000));
    else if (arg == "--kid-subset-size") kid.subset_size = positive_integer(value(), "evaluate", arg), subset_size_given = true;
    else if (arg == "--kid-seed") kid.seed = static_cast<uint32_t>(
        std::min<int64_t>(positive_integer(value(), "evaluate", arg), 0xffffffffll));
    else if (arg == "--checkpoint")
      throw UsageError("evaluate --checkpoint: scoring a checkpoint's images needs ladder's InceptionV3, which is "
                       "not available yet; give --features and --reference feature files");
    else throw UsageError("evaluate: unknown option '" + arg + "' (see ladder evaluate --help)");
  }
  const InceptionInput mode = inception_input_named(mode_name, "evaluate: --mode");
  io::FeatureSet a;
  if (!store_path.empty()) {
    LADDER_CHECK_USAGE(features_path.empty(), "evaluate: give --features or --store, not both");
    LADDER_CHECK_USAGE(!weights.empty(), "evaluate: --store needs --weights (InceptionV3 weights with pytorch-fid's "
                                         "names, as safetensors)");
    LADDER_CHECK_USAGE(!save_path.empty() || !reference_path.empty(),
                       "evaluate: --store needs --save-features or --reference (or both)");
    a = store_features(store_path, weights, mode, resolution, count);
    if (!save_path.empty() && ProcessContext::get().rank() == 0) io::write_feature_set(save_path, a);
    if (reference_path.empty()) return 0;
  } else {
    LADDER_CHECK_USAGE(!features_path.empty() && !reference_path.empty(),
                       "evaluate: --features and --reference are required (see ladder evaluate --help)");
    a = io::read_feature_set(features_path);
  }
  const io::FeatureSet b = io::read_feature_set(reference_path);
  LADDER_CHECK_USAGE(a.dims == b.dims, "evaluate: ", features_path, " holds ", a.dims, "-d features, ",
                     reference_path, " ", b.dims, "-d");
  if (!subset_size_given) kid.subset_size = std::min({kid.subset_size, a.count, b.count});
  const double fid = eval::frechet_distance(a.values.data(), a.count, b.values.data(), b.count, a.dims);
  const eval::KidScore score =
      eval::kernel_inception_distance(a.values.data(), a.count, b.values.data(), b.count, a.dims, kid);
  if (ProcessContext::get().rank() != 0) return 0;
  char line[256];
  std::snprintf(line, sizeof line, "fid %.17g (%lld vs %lld images, %d features)\n", fid,
                static_cast<long long>(a.count), static_cast<long long>(b.count), a.dims);
  std::cout << line;
  std::snprintf(line, sizeof line, "kid_mean %.17g kid_std %.17g (%d subsets of %lld)\n", score.mean, score.std,
                score.subsets, static_cast<long long>(score.subset_size));
  std::cout << line;
  return 0;
}

}  // namespace ladder
