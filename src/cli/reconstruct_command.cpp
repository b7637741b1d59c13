// Why this file exists: `ladder reconstruct --checkpoint DIR|M.safetensors --store S.h5
// [--resolution R] [--count N] --out grid.png|R.h5`: the first N images of one level of a
// store through the autoencoder with z = μ, on every rank of the job (rank r takes images
// i ≡ r mod world), the mean L1 and the PSNR over all of them, and either a grid (originals
// above reconstructions) or an HDF5 file with the float32 originals and reconstructions
// (N, R, R, C) in [−1, 1], for comparison with other tools. The model comes from the
// checkpoint's config or the file's __metadata__ (ladder's exports); a safetensors file
// saved from PyTorch names it with --config or --model.* flags.
#include "cli/reconstruct_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/arguments.h"
#include "comm/communicator.h"
#include "comm/image_order.h"
#include "comm/mpi_session.h"
#include "config/config.h"
#include "core/check.h"
#include "data/image_shard.h"
#include "io/hdf5.h"
#include "io/image_grid.h"
#include "io/image_store.h"
#include "train/compute_device.h"
#include "train/resume.h"

namespace ladder {
namespace {

// Every rank's images (count_r, R, R, C) into (N, R, R, C) on every rank, in global index
// order (rank r's k-th image is image r + k·world).
TensorF gather_images(Communicator& comm, const TensorF& mine, int64_t total, const Shape& image) {
  const int64_t per_image = image.h * image.w * image.c;
  TensorF out({total, image.h, image.w, image.c});
  const std::vector<float> ordered = gather_in_image_order(comm, mine.data(), mine.numel() / per_image, per_image, total);
  std::copy(ordered.begin(), ordered.end(), out.data());
  return out;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string reconstruct_usage() {
  return "usage: ladder reconstruct --checkpoint DIR|M.safetensors --store S.h5 [--resolution R]\n"
         "                          [--count N] --out grid.png|R.h5 [--config F.ini] [--section.key v ...]\n"
         "\n"
         "Reconstructs the first N images of one level of a store (z = mu) and prints their mean\n"
         "L1 and PSNR (model range [-1, 1], peak-to-peak 2). Under mpirun the ranks split the\n"
         "images. --out grid.png: originals above reconstructions; --out R.h5: datasets\n"
         "/originals and /reconstructions, float32 (N, R, R, C) in [-1, 1].\n"
         "\n"
         "options:\n"
         "  --checkpoint P   a checkpoint directory or a safetensors file (ladder export, or\n"
         "                   safetensors.torch.save_file of a MONAI AutoencoderKL state dict;\n"
         "                   for the latter give the model with --config or --model.* flags)\n"
         "  --store S.h5     an image store (ladder pack) or, with --data.dataset, an h5py file\n"
         "  --resolution R   the level (default: the store's largest)\n"
         "  --count N        images (default 8; all when larger than the store)\n"
         "  --out FILE       grid.png or R.h5\n"
         "  --config F.ini   config keys (run.device, model.* ...); flags win\n"
         "  --help           this text\n";
}

int reconstruct_command(const std::vector<std::string>& args) {
  std::string checkpoint, store_path, out, config_path;
  int resolution = 0;
  int64_t count = 8;
  std::vector<std::string> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << reconstruct_usage();
      return 0;
    }
    auto value = [&]() -> const std::string& { return option_value(args, i, "reconstruct"); };
    auto number = [&](const std::string& text) { return positive_integer(text, "reconstruct", arg); };
    if (arg == "--checkpoint") checkpoint = value();
    else if (arg == "--store") store_path = value();
    else if (arg == "--out") out = value();
    else if (arg == "--config") config_path = value();
    else if (arg == "--resolution") resolution = static_cast<int>(number(value()));
    else if (arg == "--count") count = number(value());
    else flags.push_back(arg);  // --section.key value: the config parser checks them
  }
  LADDER_CHECK_USAGE(!checkpoint.empty() && !store_path.empty() && !out.empty(),
                     "reconstruct: --checkpoint, --store and --out are required (see ladder reconstruct --help)");
  LADDER_CHECK_USAGE(ends_with(out, ".png") || ends_with(out, ".h5"),
                     "reconstruct: --out must end in .png or .h5 (got '", out, "')");
  std::vector<std::string> all_flags = model_flags_of(checkpoint);
  all_flags.insert(all_flags.end(), flags.begin(), flags.end());
  const Config config = load_config(config_path, all_flags);

  const std::unique_ptr<Communicator> comm = make_communicator(CommSettings{"mpi", config.comm.timeout_s});
  const io::ImageStoreReader store(store_path, config.data.dataset, config.data.layout);
  const io::StoreInfo& info = store.info();
  LADDER_CHECK_USAGE(info.channels == config.model.in_channels, store_path, ": ", info.channels,
                     "-channel images, but the model takes ", config.model.in_channels);
  if (resolution == 0)
    for (const io::StoreLevel& level : info.levels) resolution = std::max(resolution, level.resolution);
  LADDER_CHECK_USAGE(store.has_resolution(resolution), store_path, ": no images at resolution ", resolution);
  count = std::min(count, info.count);
  const data::ImageShard shard = store.load_shard(resolution, comm->rank(), comm->world(), {0, count},
                                                  data::parse_intensity(config.data.intensity));

  ParamStore params;
  std::unique_ptr<AutoencoderDevice> device =
      make_loaded_autoencoder(config, params, MpiSession::node_local_rank(), checkpoint);  // strict names

  const Shape image{1, resolution, resolution, info.channels};
  TensorF originals, reconstructions({shard.count(), resolution, resolution, info.channels});
  data::images_to_tensor(shard, 0, shard.count(), originals);
  const int64_t per_image = image.h * image.w * image.c;
  // One image per forward pass and the sums taken over the gathered images in image order:
  // the same bits on any world size (the kernels oneDNN and cuDNN pick depend on the batch).
  TensorF part_in, part_out;
  for (int64_t k = 0; k < shard.count(); ++k) {
    data::images_to_tensor(shard, k, 1, part_in);
    device->reconstruct(part_in, part_out);
    std::copy_n(part_out.data(), per_image, reconstructions.data() + k * per_image);
  }
  const TensorF all_originals = gather_images(*comm, originals, count, image);
  const TensorF all_reconstructions = gather_images(*comm, reconstructions, count, image);
  double absolute = 0, squared = 0;
  for (int64_t k = 0; k < all_originals.numel(); ++k) {
    const double d = static_cast<double>(all_reconstructions[k]) - all_originals[k];
    absolute += std::abs(d);
    squared += d * d;
  }
  const double elements = static_cast<double>(all_originals.numel());
  const double l1 = absolute / elements, mse = squared / elements;
  const double psnr = mse > 0 ? 10 * std::log10(4.0 / mse) : INFINITY;
  if (comm->rank() == 0) {
    if (ends_with(out, ".png")) {
      io::write_image_grid(out, {&all_originals, &all_reconstructions});
    } else {
      const std::string temporary = out + ".tmp";
      {
        io::h5::File file = io::h5::create_file(temporary);
        const std::vector<hsize_t> dims = {static_cast<hsize_t>(count), static_cast<hsize_t>(resolution),
                                           static_cast<hsize_t>(resolution), static_cast<hsize_t>(info.channels)};
        io::h5::write_float_dataset(file.get(), "originals", dims, all_originals.data(), temporary);
        io::h5::write_float_dataset(file.get(), "reconstructions", dims, all_reconstructions.data(), temporary);
        io::h5::write_string_attribute(file.get(), "checkpoint", checkpoint, temporary);
        io::h5::write_string_attribute(file.get(), "store", store_path, temporary);
        LADDER_CHECK(file.close(), "cannot close ", temporary);
      }
      std::rename(temporary.c_str(), out.c_str());
    }
    std::printf("reconstruct: %lld images at %dx%d from %s: mean L1 %.6f, PSNR %.3f dB -> %s\n",
                static_cast<long long>(count), resolution, resolution, checkpoint.c_str(), l1, psnr,
                out.c_str());
  }
  return 0;
}

}  // namespace ladder
