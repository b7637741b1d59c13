// Why this file exists: `ladder encode --checkpoint AE --store S.h5 --out L.h5 [--levels ...]`.
// Every rank encodes its images (i ≡ rank mod world) of each level one at a time, a few per
// round; each round's latents are all-gathered and rank 0 writes them, so no rank holds a
// whole level of latents. scale_factor = 1 / std of sampled latents z = μ + σ·ε over the whole
// top level (ε keyed by (seed, image)), as MONAI's recipe computes it on its first batch, but
// over every image and stored with the latents. Latents and scale_factor are the same bits on
// any world size.
#include "cli/encode_command.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/arguments.h"
#include "comm/communicator.h"
#include "comm/image_order.h"
#include "comm/mpi_session.h"
#include "config/config.h"
#include "core/check.h"
#include "core/rng.h"
#include "data/image_shard.h"
#include "io/checkpoint_manifest.h"
#include "io/image_store.h"
#include "io/safetensors.h"
#include "io/latent_store.h"
#include "train/compute_device.h"
#include "train/resume.h"

namespace ladder {
namespace {

// Images per rank and all-gather round. Each is encoded alone (a forward pass of one image), so
// its latents do not depend on the world size, which decides the images that would share a
// batch (oneDNN and cuDNN pick their kernels per batch shape).
constexpr int64_t kImagesPerRound = 4;

std::vector<int> parse_levels(const std::string& text) {
  std::vector<int> levels;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    char* end = nullptr;
    const long value = std::strtol(item.c_str(), &end, 10);
    LADDER_CHECK_USAGE(!item.empty() && *end == '\0' && value > 0, "encode: --levels '", text,
                       "' must be a comma list of resolutions");
    levels.push_back(static_cast<int>(value));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return levels;
}

}  // namespace

std::string encode_usage() {
  return "usage: ladder encode --checkpoint AE --store S.h5 --out L.h5 [--levels 256,512,1024]\n"
         "                     [--seed K] [--config F.ini] [--section.key value ...]\n"
         "\n"
         "Encodes every image of the store's levels with a trained autoencoder (a checkpoint\n"
         "directory or a safetensors file; the model keys come from it or from the config) into\n"
         "a latent store: /levels/R/mu and /levels/R/logvar, float32 (N, R/d, R/d, latent), with\n"
         "per-image XXH3-64 checksums, the autoencoder's config and step, and scale_factor =\n"
         "1 / std of sampled latents over the top level. Under mpirun the ranks split the images.\n"
         "\n"
         "options:\n"
         "  --checkpoint AE   the autoencoder\n"
         "  --store S.h5      an image store (or an h5py file with --data.dataset NAME)\n"
         "  --out L.h5        the latent store to write (atomically)\n"
         "  --levels LIST     image resolutions to encode (default: every level of the store)\n"
         "  --seed K          seed of the ε that samples the latents for scale_factor (default 0)\n"
         "  --help            this text\n";
}

int encode_command(const std::vector<std::string>& args) {
  std::string checkpoint, store_path, out, config_path, levels_text;
  uint64_t seed = 0;
  std::vector<std::string> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << encode_usage();
      return 0;
    }
    auto value = [&]() -> const std::string& { return option_value(args, i, "encode"); };
    if (arg == "--checkpoint") checkpoint = value();
    else if (arg == "--store") store_path = value();
    else if (arg == "--out") out = value();
    else if (arg == "--config") config_path = value();
    else if (arg == "--levels") levels_text = value();
    else if (arg == "--seed") seed = std::strtoull(value().c_str(), nullptr, 10);
    else flags.push_back(arg);
  }
  LADDER_CHECK_USAGE(!checkpoint.empty() && !store_path.empty() && !out.empty(),
                     "encode: --checkpoint, --store and --out are required (see ladder encode --help)");
  std::vector<std::string> all_flags = model_flags_of(checkpoint);
  all_flags.insert(all_flags.end(), flags.begin(), flags.end());
  const Config config = load_config(config_path, all_flags);
  const std::unique_ptr<Communicator> comm = make_communicator(CommSettings{"mpi", config.comm.timeout_s});
  const int rank = comm->rank(), world = comm->world();

  const io::ImageStoreReader store(store_path, config.data.dataset, config.data.layout);
  const io::StoreInfo& info = store.info();
  LADDER_CHECK_USAGE(info.channels == config.model.in_channels, store_path, ": ", info.channels,
                     "-channel images, but the autoencoder takes ", config.model.in_channels);
  const int downsampling = 1 << (static_cast<int>(config.model.channels.size()) - 1);
  std::vector<int> levels;
  if (levels_text.empty())
    for (const io::StoreLevel& level : info.levels) levels.push_back(level.resolution);
  else
    levels = parse_levels(levels_text);
  std::sort(levels.begin(), levels.end());
  for (int r : levels) {
    LADDER_CHECK_USAGE(store.has_resolution(r), store_path, ": no images at resolution ", r);
    LADDER_CHECK_USAGE(r % downsampling == 0, "encode: resolution ", r, " is not divisible by the autoencoder's ",
                       downsampling, "x downsampling");
  }

  ParamStore params;
  std::unique_ptr<AutoencoderDevice> device =
      make_loaded_autoencoder(config, params, MpiSession::node_local_rank(), checkpoint);

  std::unique_ptr<io::LatentStoreWriter> writer;
  if (rank == 0) {
    io::LatentStoreInfo latent;
    latent.count = info.count;
    latent.latent_channels = config.model.latent_channels;
    latent.downsampling = downsampling;
    nlohmann::json keys = nlohmann::json::object();
    for (const auto& [key, value] : config.key_values())
      if (key.rfind("model.", 0) == 0) keys[key] = value;
    latent.autoencoder = keys.dump();
    latent.autoencoder_checkpoint = checkpoint;
    std::error_code error;
    if (std::filesystem::is_directory(checkpoint, error)) {
      latent.autoencoder_step = io::read_manifest((std::filesystem::path(checkpoint) / io::kManifestFile).string()).step;
    } else {
      const io::SafetensorsHeader header = io::read_safetensors_header(checkpoint);
      auto step = header.metadata.find("step");
      if (step != header.metadata.end()) latent.autoencoder_step = std::atoll(step->second.c_str());
    }
    latent.resolutions = levels;
    std::vector<std::string> names;
    for (int64_t i = 0; i < info.count; ++i) names.push_back(store.name(i));
    writer = std::make_unique<io::LatentStoreWriter>(out, latent, names);
  }

  std::vector<double> image_moments;  // (held, 2): Σz, Σz² of each held image's sampled latents, top level
  for (int resolution : levels) {
    const data::ImageShard shard =
        store.load_shard(resolution, rank, world, {}, data::parse_intensity(config.data.intensity));
    const int64_t side = resolution / downsampling;
    const int64_t per_image = side * side * config.model.latent_channels;
    const int64_t per_rank = (info.count + world - 1) / world;
    const int64_t rounds = (per_rank + kImagesPerRound - 1) / kImagesPerRound;
    std::vector<float> mine(static_cast<size_t>(2 * kImagesPerRound * per_image));  // [μ | log σ²]
    std::vector<float> all(mine.size() * static_cast<size_t>(world));
    std::vector<float> block_mu, block_logvar;
    TensorF images, mu, logvar;
    for (int64_t round = 0; round < rounds; ++round) {
      const int64_t first = round * kImagesPerRound;
      const int64_t n = std::clamp<int64_t>(shard.count() - first, 0, kImagesPerRound);
      std::fill(mine.begin(), mine.end(), 0.f);
      for (int64_t k = 0; k < n; ++k) {
        data::images_to_tensor(shard, first + k, 1, images);
        device->encode(images, mu, logvar);
        std::copy_n(mu.data(), per_image, mine.begin() + k * per_image);
        std::copy_n(logvar.data(), per_image, mine.begin() + (kImagesPerRound + k) * per_image);
        if (resolution != levels.back()) continue;
        Rng rng(seed ^ 0x6c6174656e74ull, static_cast<uint64_t>(shard.indices[first + k]));
        double sum = 0, sum_squares = 0;
        for (int64_t e = 0; e < per_image; ++e) {
          const double lv = std::clamp(static_cast<double>(logvar[e]), -30.0, 20.0);
          const double z = mu[e] + std::exp(0.5 * lv) * rng.normal();
          sum += z;
          sum_squares += z * z;
        }
        image_moments.insert(image_moments.end(), {sum, sum_squares});
      }
      comm->all_gather(mine.data(), all.data(), static_cast<int64_t>(mine.size()), DType::kF32);
      if (rank != 0) continue;
      // This round holds global images [first·W, (first + R)·W): image g from rank g mod W.
      const int64_t begin = first * world, end = std::min<int64_t>(info.count, (first + kImagesPerRound) * world);
      if (begin >= end) continue;
      block_mu.resize(static_cast<size_t>((end - begin) * per_image));
      block_logvar.resize(block_mu.size());
      for (int64_t g = begin; g < end; ++g) {
        const int64_t from = g % world, local = g / world - first;
        const float* source = all.data() + from * static_cast<int64_t>(mine.size());
        std::copy_n(source + local * per_image, per_image, block_mu.data() + (g - begin) * per_image);
        std::copy_n(source + (kImagesPerRound + local) * per_image, per_image,
                    block_logvar.data() + (g - begin) * per_image);
      }
      writer->write(resolution, begin, end - begin, block_mu.data(), block_logvar.data());
    }
  }
  // Summed in image order, so scale_factor is the same bits on any world size.
  const std::vector<double> ordered =
      gather_in_image_order(*comm, image_moments.data(), static_cast<int64_t>(image_moments.size() / 2), 2, info.count);
  double moments[3] = {0, 0, 0};  // Σz, Σz², n over the top level's sampled latents
  for (int64_t i = 0; i < info.count; ++i) {
    moments[0] += ordered[2 * i];
    moments[1] += ordered[2 * i + 1];
  }
  const int64_t top = levels.back() / downsampling;
  moments[2] = static_cast<double>(info.count * top * top * config.model.latent_channels);
  const double mean = moments[0] / moments[2];
  const double variance = (moments[1] - moments[2] * mean * mean) / std::max(1.0, moments[2] - 1);  // torch.std
  LADDER_CHECK(variance > 0, "encode: the sampled latents have no variance");
  const double scale = 1.0 / std::sqrt(variance);
  if (rank == 0) {
    writer->finish(scale);
    std::cout << "encode: " << info.count << " images at";
    for (int r : levels) std::cout << " " << r;
    std::cout << " -> " << out << ": latents (" << config.model.latent_channels << ", R/" << downsampling
              << ", R/" << downsampling << "), scale_factor " << scale << "\n";
  }
  return 0;
}

}  // namespace ladder
