// Why this file exists: `ladder evaluate`. Four modes:
//   --features A.h5 --reference B.h5: FID (pytorch-fid's definition, eval/frechet_distance.h)
//     and KID (torch-fidelity's, eval/kernel_inception_distance.h) between two feature files;
//   --store S.h5 --weights W: InceptionV3 pool3 features of a store's images, written with
//     --save-features and scored against --reference when given;
//   --checkpoint AE --store S.h5 --weights W: an autoencoder's reconstructions of a store's
//     images: rFID (originals against reconstructions saved as uint8), PSNR, L1, SSIM, MS-SSIM,
//     and LPIPS with --perceptual.weights;
//   --checkpoint UNET --autoencoder AE --count N --reference R --weights W: FID, KID and MS-SSIM
//     diversity of N generated images (cli/evaluate_samples.h) against a reference
//     (eval/reference_set.h: feature file, .npz statistics or image store).
// Under mpirun the ranks split the images; every score is the same bits on any world size.
#include "cli/evaluate_command.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "cli/arguments.h"
#include "cli/evaluate_samples.h"
#include "comm/communicator.h"
#include "comm/image_order.h"
#include "comm/mpi_session.h"
#include "config/config.h"
#include "core/check.h"
#include "core/context.h"
#include "data/image_shard.h"
#include "eval/frechet_distance.h"
#include "eval/inception_features.h"
#include "eval/kernel_inception_distance.h"
#include "eval/reference_set.h"
#include "eval/sample_diversity.h"
#include "eval/structural_similarity.h"
#include "io/feature_file.h"
#include "io/image_grid.h"
#include "io/image_store.h"
#include "model/cpu_backend.h"
#include "model/lpips.h"
#include "train/compute_device.h"
#include "train/resume.h"

namespace ladder {

std::string evaluate_usage() {
  return "usage: ladder evaluate --features A.h5 --reference B.h5 [KID options]\n"
         "       ladder evaluate --store S.h5 --weights W [--mode pytorch_fid|tf1] [--resolution R]\n"
         "                       [--count N] [--save-features F.h5] [--reference R] [--diversity]\n"
         "       ladder evaluate --checkpoint AE --store S.h5 --weights W [--mode M] [--resolution R]\n"
         "                       [--count N] [--config F.ini] [--section.key value ...]\n"
         "       ladder evaluate --checkpoint UNET --autoencoder AE --count N --resolution R --weights W\n"
         "                       --reference R [--sampler ddim|ddpm] [--steps S] [--seed K] [--ema]\n"
         "                       [--baseline noise]\n"
         "\n"
         "FID and KID between two sets of feature vectors, each an HDF5 file with /features (N, D)\n"
         "float (e.g. InceptionV3 pool3 features from pytorch-fid or torch-fidelity, written with\n"
         "h5py). FID = |mu_a - mu_b|^2 + tr S_a + tr S_b - 2 tr sqrt(S_a S_b), covariances with N - 1,\n"
         "in double; with fewer images than dimensions the trace comes from singular values of\n"
         "the centred features. KID: the unbiased MMD^2 with kernel (x.y/D + 1)^3 over S subsets of\n"
         "M images of each set, drawn as torch-fidelity draws them, as mean and std.\n"
         "With --store, the features are the 2048-d pool3 of pytorch-fid's InceptionV3 for the first\n"
         "N images of level R of an image store, one image per pass. With --checkpoint, an\n"
         "autoencoder reconstructs those images (z = mu), and rFID compares the originals' features\n"
         "with those of the reconstructions saved as uint8; PSNR and L1 are on the model's [-1, 1];\n"
         "SSIM and MS-SSIM are MONAI's (Gaussian window 11, sigma 1.5; data range 1 on [0, 1]; MS-SSIM\n"
         "needs 176 px and prints nan below); LPIPS (the lpips package's distance) when\n"
         "--perceptual.weights names its network (--perceptual.network alex|vgg).\n"
         "With a UNet checkpoint, N images are sampled (noise keyed by seed and image), decoded by the\n"
         "autoencoder, saved as uint8, and scored (FID, KID) against the reference, with their\n"
         "diversity: MONAI's tutorials' mean MS-SSIM (kernel 4) over the pairs of the first 100.\n"
         "--baseline noise decodes the initial noise instead (no UNet): the score to beat.\n"
         "A reference R is a feature file, pytorch-fid statistics (.npz: mu, sigma; FID only), or an\n"
         "image store (every image at R; its features cached beside it as S.h5.fid-R-MODE-KEY.h5,\n"
         "keyed by the store's path, size and time, the mode and the weights).\n"
         "Under mpirun the ranks split the images and no score depends on their number.\n"
         "\n"
         "options:\n"
         "  --features A.h5        the feature set to score\n"
         "  --reference R          the reference: feature file, .npz statistics or image store\n"
         "  --store S.h5           an image store (ladder pack)\n"
         "  --checkpoint CKPT      an autoencoder or a UNet: a checkpoint directory or safetensors file\n"
         "  --weights W            InceptionV3 weights (safetensors, pytorch-fid's names: made by\n"
         "                         launch/fid_weights.py from pytorch-fid's release), or random or\n"
         "                         random:SEED (seeded random weights: a sanity check only)\n"
         "  --mode M               pytorch_fid (u8/255, PyTorch bilinear to 299, 2x - 1; default) or\n"
         "                         tf1 (TF1 bilinear to 299, (x - 128)/128: torch-fidelity, the LDM paper)\n"
         "  --resolution R         the store's level (default: the largest)\n"
         "  --count N              the first N images (default: all)\n"
         "  --save-features F.h5   write the extracted features (--store without --checkpoint)\n"
         "  --diversity            --store: the MS-SSIM diversity of its first 100 images\n"
         "  --kid-subsets S        KID subsets (default 100)\n"
         "  --kid-subset-size M    images per KID subset (default 1000, or the smaller set's size)\n"
         "  --kid-seed K           seed of the subset draws (default 2020, torch-fidelity's)\n"
         "  --autoencoder AE       decodes a UNet's latents\n"
         "  --sampler, --steps, --seed, --ema   as ladder sample (defaults ddim, 50, 0, off)\n"
         "  --baseline noise       score decoded pure noise instead of the UNet's samples\n"
         "  --device D             where InceptionV3 runs: auto (a GPU when there is one), cpu, cuda\n"
         "  --config F.ini         config keys for --checkpoint (run.device, model.* ...); flags win\n"
         "  --help                 this text\n";
}

namespace {

struct Options {
  std::string features, reference, store, checkpoint, autoencoder, weights, save, config, mode = "pytorch_fid";
  std::string sampler = "ddim";
  int steps = 50;
  uint64_t seed = 0;
  bool ema = false;
  bool noise_baseline = false;
  bool diversity = false;  // --store: the diversity of its images
  std::string device = "auto";  // where InceptionV3 runs
  bool gpu = false;              // `device`, resolved once the flags are read
  int resolution = 0;
  int64_t count = INT64_MAX;
  eval::KidSettings kid;
  bool subset_size_given = false;
  std::vector<std::string> flags;  // --section.key value, for --checkpoint
};

bool is_root() { return ProcessContext::get().rank() == 0; }

void print(const char* format, double a, double b = 0, double c = 0) {
  char line[256];
  std::snprintf(line, sizeof line, format, a, b, c);
  if (is_root()) std::cout << line;
}

// The rank's share of the first `count` images of level `resolution` (0: the largest), with the
// intensity transform `intensity` (data.intensity).
data::ImageShard store_share(const Communicator& comm, const io::ImageStoreReader& store, const std::string& path,
                             int& resolution, int64_t& count, const std::string& intensity) {
  const io::StoreInfo& info = store.info();
  if (resolution == 0)
    for (const io::StoreLevel& level : info.levels) resolution = std::max(resolution, level.resolution);
  LADDER_CHECK_USAGE(store.has_resolution(resolution), path, ": no images at resolution ", resolution);
  count = std::min(count, info.count);
  LADDER_CHECK_USAGE(count >= 2, "evaluate: ", path, " gives ", count, " images; FID needs at least 2");
  return store.load_shard(resolution, comm.rank(), comm.world(), {0, count}, data::parse_intensity(intensity));
}

// --checkpoint AE --store S: rFID, PSNR and L1 of the reconstructions.
void score_autoencoder(const Options& o, InceptionInput mode) {
  std::vector<std::string> flags = model_flags_of(o.checkpoint);
  flags.insert(flags.end(), o.flags.begin(), o.flags.end());
  const Config config = load_config(o.config, flags);
  const std::unique_ptr<Communicator> comm = make_communicator(CommSettings{"mpi", config.comm.timeout_s});
  const io::ImageStoreReader store(o.store, config.data.dataset, config.data.layout);
  int resolution = o.resolution;
  int64_t count = o.count;
  const data::ImageShard shard = store_share(*comm, store, o.store, resolution, count, config.data.intensity);
  LADDER_CHECK_USAGE(shard.channels == config.model.in_channels, o.store, ": ", shard.channels,
                     "-channel images, but the autoencoder takes ", config.model.in_channels);
  ParamStore params;
  std::unique_ptr<AutoencoderDevice> device =
      make_loaded_autoencoder(config, params, MpiSession::node_local_rank(), o.checkpoint);

  // One image per forward pass; each reconstruction saved as uint8 as the PNG writer saves it
  // (data::unit_to_byte).
  const int64_t per_image = int64_t(resolution) * resolution * shard.channels;
  std::vector<uint8_t> saved(static_cast<size_t>(shard.count() * per_image));
  // LPIPS of each reconstruction against its image, when perceptual.weights names the network.
  CpuBackend lpips_backend;
  std::unique_ptr<Lpips<CpuBackend>> lpips;
  const bool vgg = config.perceptual.network == "vgg";
  if (!config.perceptual.weights.empty()) {
    lpips = std::make_unique<Lpips<CpuBackend>>(vgg ? LpipsNetwork::kVgg : LpipsNetwork::kAlex, lpips_backend);
    lpips->load(config.perceptual.weights);
  }
  const bool lpips_fits = resolution >= (vgg ? 16 : 31);  // the smallest side every slice takes
  constexpr int64_t kFields = 5;
  std::vector<double> rows;  // (held, 5): Σ|d|, Σd² on [−1, 1], SSIM, MS-SSIM on [0, 1], LPIPS
  std::vector<double> original01(static_cast<size_t>(per_image)), reconstruction01(original01.size());
  TensorF image, reconstruction;
  for (int64_t k = 0; k < shard.count(); ++k) {
    data::images_to_tensor(shard, k, 1, image);
    device->reconstruct(image, reconstruction);
    double absolute = 0, squared = 0;
    for (int64_t e = 0; e < per_image; ++e) {
      const double d = double(reconstruction[e]) - image[e];
      absolute += std::abs(d);
      squared += d * d;
      saved[k * per_image + e] = data::unit_to_byte(reconstruction[e]);
      original01[e] = (double(image[e]) + 1) / 2, reconstruction01[e] = (double(reconstruction[e]) + 1) / 2;
    }
    const int side = resolution, c = shard.channels;
    const double perceptual = lpips && lpips_fits ? lpips->forward(reconstruction, image).at(0) : NAN;
    rows.insert(rows.end(), {absolute, squared, eval::ssim(reconstruction01.data(), original01.data(), side, side, c),
                             eval::ms_ssim(reconstruction01.data(), original01.data(), side, side, c), perceptual});
  }
  const std::vector<double> ordered = gather_in_image_order(*comm, rows.data(), shard.count(), kFields, count);
  double absolute = 0, squared = 0, ssim = 0, ms_ssim = 0, lpips_mean = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double* row = ordered.data() + kFields * i;
    absolute += row[0], squared += row[1];
    ssim += row[2] / count, ms_ssim += row[3] / count, lpips_mean += row[4] / count;
  }
  const double elements = static_cast<double>(count * per_image);

  eval::InceptionFeatures network(o.weights, mode, o.gpu);
  const io::FeatureSet originals =
      network.gather(*comm, data::images_as_bytes(shard, 0, shard.count()).data(), shard.count(), resolution,
                     shard.channels, count);
  const io::FeatureSet reconstructions =
      network.gather(*comm, saved.data(), shard.count(), resolution, shard.channels, count);
  // (generated, reference) order, as training's evaluation takes it: the same bits.
  const double rfid = eval::frechet_distance(reconstructions.values.data(), count, originals.values.data(), count,
                                             originals.dims);
  char line[512];
  std::snprintf(line, sizeof line, "evaluate: %lld images at %dx%d, %s, mode %s\n", static_cast<long long>(count),
                resolution, resolution, network.description().c_str(), inception_input_name(mode));
  if (is_root()) std::cout << line;
  print("rfid %.17g psnr %.17g l1 %.17g\n", rfid, 10 * std::log10(4.0 / (squared / elements)), absolute / elements);
  // MONAI's SSIMMetric and MultiScaleSSIMMetric (data_range 1 on [0, 1]); nan where the images
  // are too small (SSIM: 11 px; MS-SSIM: 176 px).
  print("ssim %.17g ms_ssim %.17g\n", ssim, ms_ssim);
  if (lpips) {  // the lpips package's distance on [−1, 1], averaged over the images; nan when too small
    std::snprintf(line, sizeof line, "lpips %.17g (%s, weights %s)\n", lpips_mean, vgg ? "vgg" : "alex",
                  config.perceptual.weights.c_str());
    if (is_root()) std::cout << line;
  }
}

std::string kind_of(const Options& o) {
  std::vector<std::string> flags = model_flags_of(o.checkpoint);
  flags.insert(flags.end(), o.flags.begin(), o.flags.end());
  return load_config(o.config, flags).model.kind;
}

void print_scores(const eval::SetScores& scores, int64_t count, const eval::ReferenceSet& reference, int dims) {
  if (is_root()) std::cout << "reference: " << reference.description << "\n";
  char line[512];
  std::snprintf(line, sizeof line, "fid %.17g (%lld vs %s, %d features)\n", scores.fid, static_cast<long long>(count),
                reference.features.count > 0 ? (std::to_string(reference.features.count) + " images").c_str()
                                             : "statistics",
                dims);
  if (is_root()) std::cout << line;
  if (!scores.kid) {
    if (is_root()) std::cout << "kid: not available (the reference holds statistics, not features)\n";
    return;
  }
  std::snprintf(line, sizeof line, "kid_mean %.17g kid_std %.17g (%d subsets of %lld)\n", scores.kid->mean,
                scores.kid->std, scores.kid->subsets, static_cast<long long>(scores.kid->subset_size));
  if (is_root()) std::cout << line;
}

// MONAI's tutorials' diversity: the mean MS-SSIM over the pairs of the first 100 images.
void print_diversity(const eval::Diversity& d, const char* what) {
  char line[256];
  std::snprintf(line, sizeof line,
                "ms_ssim_diversity %.17g std %.17g (%lld pairs of the first %lld %s; MS-SSIM kernel 4, lower is more "
                "diverse)\n",
                d.mean, d.std, static_cast<long long>(d.pairs), static_cast<long long>(d.images), what);
  if (is_root()) std::cout << line;
}

// --checkpoint UNET: FID, KID and diversity of its samples against the reference.
void score_samples(const Options& o, InceptionInput mode) {
  LADDER_CHECK_USAGE(!o.weights.empty() && !o.reference.empty() && o.count != INT64_MAX && o.resolution > 0,
                     "evaluate of a UNet: --autoencoder, --count, --resolution, --weights and --reference are "
                     "required (see ladder evaluate --help)");
  const std::unique_ptr<Communicator> comm = make_communicator(CommSettings{"mpi", Config().comm.timeout_s});
  eval::InceptionFeatures network(o.weights, mode, o.gpu);
  SampleScoring s;
  s.checkpoint = o.checkpoint, s.autoencoder = o.autoencoder, s.config = o.config, s.flags = o.flags;
  s.count = o.count, s.resolution = o.resolution, s.sampler = o.sampler, s.steps = o.steps, s.seed = o.seed;
  s.ema = o.ema;
  s.noise_baseline = o.noise_baseline;
  const HeldImages images = generate_samples(s, *comm);
  const io::FeatureSet generated =
      network.gather(*comm, images.bytes.data(), images.held, images.side, images.channels, images.total);
  const eval::ReferenceSet reference = eval::load_reference(o.reference, o.resolution, *comm, &network);
  const eval::SetScores scores = eval::score_against(generated, reference, o.kid, o.subset_size_given);
  const eval::Diversity diversity =
      eval::ms_ssim_diversity(*comm, images.bytes.data(), images.held, images.side, images.channels, images.total);
  char line[768];
  const std::string what = o.noise_baseline ? std::string("pure-noise latents decoded, no UNet")
                                            : o.sampler + ", " + std::to_string(o.steps) + " steps";
  std::snprintf(line, sizeof line, "evaluate: %lld samples at %dx%d (%s, seed %llu), %s, mode %s\n",
                static_cast<long long>(o.count), o.resolution, o.resolution, what.c_str(),
                static_cast<unsigned long long>(o.seed), network.description().c_str(), inception_input_name(mode));
  if (is_root()) std::cout << line;
  print_scores(scores, o.count, reference, generated.dims);
  print_diversity(diversity, "samples");
}

}  // namespace

int evaluate_command(const std::vector<std::string>& args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << evaluate_usage();
      return 0;
    }
    auto value = [&]() -> const std::string& { return option_value(args, i, "evaluate"); };
    auto number = [&](int64_t most) { return std::min<int64_t>(positive_integer(value(), "evaluate", arg), most); };
    if (arg == "--features") o.features = value();
    else if (arg == "--reference") o.reference = value();
    else if (arg == "--store") o.store = value();
    else if (arg == "--checkpoint") o.checkpoint = value();
    else if (arg == "--autoencoder") o.autoencoder = value();
    else if (arg == "--sampler") o.sampler = value();
    else if (arg == "--steps") o.steps = static_cast<int>(number(1000000));
    else if (arg == "--seed") o.seed = static_cast<uint64_t>(number(INT64_MAX));
    else if (arg == "--ema") o.ema = true;
    else if (arg == "--diversity") o.diversity = true;
    else if (arg == "--device") o.device = value();
    else if (arg == "--baseline") {
      LADDER_CHECK_USAGE(value() == "noise", "evaluate: --baseline takes noise (got '", args[i], "')");
      o.noise_baseline = true;
    }
    else if (arg == "--weights") o.weights = value();
    else if (arg == "--mode") o.mode = value();
    else if (arg == "--save-features") o.save = value();
    else if (arg == "--config") o.config = value();
    else if (arg == "--resolution") o.resolution = static_cast<int>(number(1 << 20));
    else if (arg == "--count") o.count = number(INT64_MAX);
    else if (arg == "--kid-subsets") o.kid.subsets = static_cast<int>(number(1000000));
    else if (arg == "--kid-subset-size") o.kid.subset_size = number(INT64_MAX), o.subset_size_given = true;
    else if (arg == "--kid-seed") o.kid.seed = static_cast<uint32_t>(number(0xffffffffll));
    else if (arg.rfind("--", 0) == 0 && arg.find('.') != std::string::npos) {
      o.flags.push_back(arg);  // --section.key value: the config parser checks them
      o.flags.push_back(value());
    } else throw UsageError("evaluate: unknown option '" + arg + "' (see ladder evaluate --help)");
  }
  const InceptionInput mode = inception_input_named(o.mode, "evaluate: --mode");
  o.gpu = device_is_gpu(o.device, "evaluate: --device");
  if (!o.checkpoint.empty() && kind_of(o) == "diffusion_unet") {
    score_samples(o, mode);
    return 0;
  }
  if (!o.checkpoint.empty()) {
    LADDER_CHECK_USAGE(!o.store.empty() && !o.weights.empty(),
                       "evaluate --checkpoint: --store and --weights are required (see ladder evaluate --help)");
    LADDER_CHECK_USAGE(o.features.empty() && o.reference.empty() && o.save.empty(),
                       "evaluate --checkpoint: --features, --reference and --save-features do not apply");
    score_autoencoder(o, mode);
    return 0;
  }
  LADDER_CHECK_USAGE(o.flags.empty(), "evaluate: ", o.flags.front(), " applies to --checkpoint only");
  const std::unique_ptr<Communicator> comm = make_communicator(CommSettings{"mpi", Config().comm.timeout_s});
  std::unique_ptr<eval::InceptionFeatures> network;
  if (!o.weights.empty()) network = std::make_unique<eval::InceptionFeatures>(o.weights, mode, o.gpu);
  io::FeatureSet a;
  if (!o.store.empty()) {
    LADDER_CHECK_USAGE(o.features.empty(), "evaluate: give --features or --store, not both");
    LADDER_CHECK_USAGE(!o.save.empty() || !o.reference.empty() || o.diversity,
                       "evaluate: --store needs --save-features, --reference or --diversity");
    LADDER_CHECK_USAGE(network != nullptr || (o.save.empty() && o.reference.empty()),
                       "evaluate: --store needs --weights (InceptionV3 weights with pytorch-fid's names, as "
                       "safetensors, or random)");
    const io::ImageStoreReader store(o.store);
    int resolution = o.resolution;
    int64_t count = o.count;
    const data::ImageShard shard = store_share(*comm, store, o.store, resolution, count, "auto");
    const std::vector<uint8_t> bytes = data::images_as_bytes(shard, 0, shard.count());
    if (o.diversity)
      print_diversity(eval::ms_ssim_diversity(*comm, bytes.data(), shard.count(), resolution, shard.channels, count),
                      "images");
    if (o.save.empty() && o.reference.empty()) return 0;
    a = network->gather(*comm, bytes.data(), shard.count(), resolution, shard.channels, count);
    if (!o.save.empty() && is_root()) io::write_feature_set(o.save, a);
    if (o.reference.empty()) return 0;
  } else {
    LADDER_CHECK_USAGE(!o.features.empty() && !o.reference.empty(),
                       "evaluate: --features and --reference are required (see ladder evaluate --help)");
    a = io::read_feature_set(o.features);
  }
  const eval::ReferenceSet reference = eval::load_reference(o.reference, o.resolution, *comm, network.get());
  const eval::SetScores scores = eval::score_against(a, reference, o.kid, o.subset_size_given);
  if (is_root())  // what was scored: its images, network and mode, as far as they are known
    std::cout << "scored: " << (o.features.empty() ? o.store : o.features) << " (" << a.count << " feature vectors"
              << (a.network.empty() ? "" : "; " + a.network) << (a.mode.empty() ? "" : ", mode " + a.mode) << ")\n";
  print_scores(scores, a.count, reference, a.dims);
  return 0;
}

}  // namespace ladder
