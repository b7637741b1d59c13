// Why this file exists: `ladder evaluate --features A.h5 --reference B.h5`: FID (pytorch-fid's
// definition, eval/frechet_distance.h) and KID (torch-fidelity's, eval/kernel_inception_distance.h)
// between two feature files, printed as one line each.
#include "cli/evaluate_command.h"

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli/arguments.h"
#include "core/check.h"
#include "eval/frechet_distance.h"
#include "eval/kernel_inception_distance.h"
#include "io/feature_file.h"

namespace ladder {

std::string evaluate_usage() {
  return "usage: ladder evaluate --features A.h5 --reference B.h5 [--kid-subsets S] [--kid-subset-size M]\n"
         "                       [--kid-seed K]\n"
         "\n"
         "FID and KID between two sets of feature vectors, each an HDF5 file with /features (N, D)\n"
         "float (e.g. InceptionV3 pool3 features from pytorch-fid or torch-fidelity, written with\n"
         "h5py). FID = |mu_a - mu_b|^2 + tr S_a + tr S_b - 2 tr sqrt(S_a S_b), covariances with N - 1,\n"
         "in double; with fewer images than dimensions the trace comes from singular values of\n"
         "the centred features. KID: the unbiased MMD^2 with kernel (x.y/D + 1)^3 over S subsets of\n"
         "M images of each set, drawn as torch-fidelity draws them, as mean and std.\n"
         "Computing features from a checkpoint's images (InceptionV3 in ladder) is not available yet.\n"
         "\n"
         "options:\n"
         "  --features A.h5        the feature set to score\n"
         "  --reference B.h5       the reference feature set (same D)\n"
         "  --kid-subsets S        KID subsets (default 100)\n"
         "  --kid-subset-size M    images per KID subset (default 1000, or the smaller set's size)\n"
         "  --kid-seed K           seed of the subset draws (default 2020, torch-fidelity's)\n"
         "  --help                 this text\n";
}

int evaluate_command(const std::vector<std::string>& args) {
  std::string features_path, reference_path;
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
  LADDER_CHECK_USAGE(!features_path.empty() && !reference_path.empty(),
                     "evaluate: --features and --reference are required (see ladder evaluate --help)");
  const io::FeatureSet a = io::read_feature_set(features_path), b = io::read_feature_set(reference_path);
  LADDER_CHECK_USAGE(a.dims == b.dims, "evaluate: ", features_path, " holds ", a.dims, "-d features, ",
                     reference_path, " ", b.dims, "-d");
  if (!subset_size_given) kid.subset_size = std::min({kid.subset_size, a.count, b.count});
  const double fid = eval::frechet_distance(a.values.data(), a.count, b.values.data(), b.count, a.dims);
  const eval::KidScore score =
      eval::kernel_inception_distance(a.values.data(), a.count, b.values.data(), b.count, a.dims, kid);
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
