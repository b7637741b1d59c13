// Why this file exists: `ladder sample`, generating images with a diffusion UNet
// (diffusion/sampler.h: noise keyed by (seed, image), DDIM or DDPM steps), then the latents
// divided by the scale factor and decoded by the autoencoder into a grid. --save-latents
// writes the initial noise, the timesteps and the final latents for comparison with other
// tools (the MONAI parity script replays them). One process, on run.device.
#include "cli/sample_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/arguments.h"
#include "cli/latent_scale.h"
#include "config/config.h"
#include "core/check.h"
#include "core/log.h"
#include "core/rng.h"
#include "diffusion/diffusion_math.h"
#include "diffusion/sampler.h"
#include "io/hdf5.h"
#include "io/image_grid.h"
#include "io/checkpoint_manifest.h"
#include "io/latent_store.h"
#include "io/safetensors.h"
#include "train/compute_device.h"
#include "train/resume.h"

namespace ladder {
namespace {

void write_latents(const std::string& path, const TensorF& noise, const TensorF& latents,
                   const std::vector<int>& timesteps, const std::string& sampler, uint64_t seed) {
  const std::string temporary = path + ".tmp";
  {
    io::h5::File file = io::h5::create_file(temporary);
    const Shape s = noise.shape();
    const std::vector<hsize_t> dims = {static_cast<hsize_t>(s.n), static_cast<hsize_t>(s.h),
                                       static_cast<hsize_t>(s.w), static_cast<hsize_t>(s.c)};
    io::h5::write_float_dataset(file.get(), "noise", dims, noise.data(), temporary);
    io::h5::write_float_dataset(file.get(), "latents", dims, latents.data(), temporary);
    const std::vector<float> steps(timesteps.begin(), timesteps.end());
    io::h5::write_float_dataset(file.get(), "timesteps", {steps.size()}, steps.data(), temporary);
    io::h5::write_string_attribute(file.get(), "sampler", sampler, temporary);
    io::h5::write_int_attribute(file.get(), "seed", static_cast<int64_t>(seed), temporary);
    LADDER_CHECK(file.close(), "cannot close ", temporary);
  }
  std::filesystem::rename(temporary, path);
}

}  // namespace

std::string sample_usage() {
  return "usage: ladder sample --checkpoint UNET [--autoencoder AE] --count N --resolution R\n"
         "                     --sampler ddpm|ddim --steps S [--seed K] [--ema] --out grid.png\n"
         "                     [--save-latents F.h5] [--scale-factor X] [--latent-resolution r]\n"
         "                     [--config F.ini] [--section.key value ...]\n"
         "\n"
         "Generates N images: x_T ~ N(0, 1) (keyed by seed and image), S reverse steps visiting\n"
         "t = T-1 - k*floor(T/S) (each step goes to the next visited t), latents / scale factor\n"
         "decoded by the autoencoder. S = T with ddpm is the full DDPM chain. The UNet comes from\n"
         "a checkpoint of a diffusion run or ladder export (which carry their model and diffusion\n"
         "keys), or a safetensors file with MONAI DiffusionModelUNet names (then give its keys:\n"
         "--model.kind diffusion_unet --model.channels ... and the diffusion keys). One process,\n"
         "on run.device.\n"
         "\n"
         "options:\n"
         "  --checkpoint UNET     the UNet weights (a checkpoint directory or safetensors file)\n"
         "  --autoencoder AE      decodes the latents (a checkpoint or safetensors file)\n"
         "  --count N             images (default 8)\n"
         "  --resolution R        image resolution (latents are R / the autoencoder's downsampling)\n"
         "  --latent-resolution r the latent size when there is no autoencoder (--save-latents only)\n"
         "  --sampler S           ddim (default) or ddpm\n"
         "  --steps S             reverse steps (default 50)\n"
         "  --seed K              seed of the noise (default 0)\n"
         "  --ema                 the checkpoint's moving average of the weights (ema.decay > 0)\n"
         "  --out grid.png        the decoded samples (needs the autoencoder and the scale factor)\n"
         "  --save-latents F.h5   /noise, /latents (N, r, r, C) and /timesteps\n"
         "  --scale-factor X      the latents' scale (default: the UNet file's metadata, or the\n"
         "                        latent store its config names)\n"
         "  --help                this text\n";
}

int sample_command(const std::vector<std::string>& args) {
  std::string checkpoint, autoencoder, out, latents_path, config_path, sampler = "ddim";
  int64_t count = 8, steps = 50, resolution = 0, latent_resolution = 0;
  uint64_t seed = 0;
  double scale_flag = 0;
  bool ema = false;
  std::vector<std::string> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << sample_usage();
      return 0;
    }
    auto value = [&]() -> const std::string& { return option_value(args, i, "sample"); };
    auto positive = [&](const std::string& text) { return positive_integer(text, "sample", arg); };
    if (arg == "--checkpoint") checkpoint = value();
    else if (arg == "--autoencoder") autoencoder = value();
    else if (arg == "--out") out = value();
    else if (arg == "--save-latents") latents_path = value();
    else if (arg == "--config") config_path = value();
    else if (arg == "--sampler") sampler = value();
    else if (arg == "--count") count = positive(value());
    else if (arg == "--steps") steps = positive(value());
    else if (arg == "--resolution") resolution = positive(value());
    else if (arg == "--latent-resolution") latent_resolution = positive(value());
    else if (arg == "--seed") seed = std::strtoull(value().c_str(), nullptr, 10);
    else if (arg == "--scale-factor") scale_flag = std::atof(value().c_str());
    else if (arg == "--ema") ema = true;
    else flags.push_back(arg);
  }
  LADDER_CHECK_USAGE(!checkpoint.empty(), "sample: --checkpoint is required (see ladder sample --help)");
  LADDER_CHECK_USAGE(!out.empty() || !latents_path.empty(), "sample: give --out grid.png and/or --save-latents F.h5");
  LADDER_CHECK_USAGE(sampler == "ddim" || sampler == "ddpm", "sample: --sampler must be ddim or ddpm (got '",
                     sampler, "')");
  std::vector<std::string> unet_flags = model_flags_of(checkpoint);
  unet_flags.insert(unet_flags.end(), flags.begin(), flags.end());
  const Config config = load_config(config_path, unet_flags);
  LADDER_CHECK_USAGE(config.model.kind == "diffusion_unet", checkpoint, ": model.kind is ", config.model.kind,
                     "; sample needs a diffusion UNet (give --model.kind diffusion_unet and its model keys)");
  LADDER_CHECK_USAGE(!out.empty() ? !autoencoder.empty() : true,
                     "sample: --out needs --autoencoder to decode the latents");

  // The autoencoder (decode) and the latent size.
  std::unique_ptr<AutoencoderDevice> decoder;
  ParamStore decoder_params;
  int64_t side = latent_resolution;
  if (!autoencoder.empty()) {
    std::vector<std::string> ae_flags = model_flags_of(autoencoder);
    ae_flags.insert(ae_flags.end(), {"--run.device", config.run.device});
    const Config ae_config = load_config("", ae_flags);
    LADDER_CHECK_USAGE(ae_config.model.latent_channels == config.model.in_channels, autoencoder, ": ",
                       ae_config.model.latent_channels, " latent channels, but the UNet takes ",
                       config.model.in_channels);
    const int64_t downsampling = int64_t{1} << (ae_config.model.channels.size() - 1);
    LADDER_CHECK_USAGE(resolution > 0 && resolution % downsampling == 0, "sample: --resolution must be a multiple of ",
                       "the autoencoder's downsampling ", downsampling);
    side = resolution / downsampling;
    decoder = make_loaded_autoencoder(ae_config, decoder_params, 0, autoencoder);
  }
  LADDER_CHECK_USAGE(side > 0, "sample: give --autoencoder and --resolution, or --latent-resolution");
  const int64_t unet_downsampling = int64_t{1} << (config.model.channels.size() - 1);
  LADDER_CHECK_USAGE(side % unet_downsampling == 0, "sample: latents of ", side, "x", side,
                     " do not divide by the UNet's ", unet_downsampling, "x downsampling");
  const double scale = out.empty() ? 1.0 : find_scale_factor(scale_flag, checkpoint, config);
  LADDER_CHECK_USAGE(scale > 0, "sample: the latents' scale factor is unknown: give --scale-factor (the latent "
                     "store's scale_factor attribute)");

  ParamStore params;
  std::unique_ptr<UNetDevice> unet = make_loaded_unet(config, params, 0, checkpoint, ema ? "ema" : "master");
  const NoiseSchedule schedule({config.diffusion.schedule, config.diffusion.timesteps, config.diffusion.beta_start,
                                config.diffusion.beta_end});
  SamplerSettings settings;
  settings.sampler = sampler;
  settings.steps = static_cast<int>(steps);
  settings.seed = seed;
  settings.clip_sample = config.diffusion.clip_sample;
  const int channels = config.model.in_channels;
  const Samples samples =
      generate(schedule, parse_prediction(config.diffusion.prediction), {count, side, side, channels}, settings,
               [&](const TensorF& x, const std::vector<float>& t, TensorF& out) { unet->predict(x, t, out); });
  const std::vector<int>& timesteps = samples.timesteps;
  if (!latents_path.empty()) write_latents(latents_path, samples.noise, samples.latents, timesteps, sampler, seed);
  if (!out.empty()) {
    TensorF scaled(samples.latents.shape()), images;
    for (int64_t i = 0; i < scaled.numel(); ++i) scaled[i] = static_cast<float>(samples.latents[i] / scale);
    decoder->decode(scaled, images);
    write_sample_grid(out, images);
  }
  std::printf("sample: %lld images, %s with %lld steps (t %d..%d), latents %lldx%lldx%d%s%s%s%s\n",
              static_cast<long long>(count), sampler.c_str(), static_cast<long long>(steps), timesteps.front(),
              timesteps.back(), static_cast<long long>(side), static_cast<long long>(side), channels,
              out.empty() ? "" : " -> ", out.c_str(), latents_path.empty() ? "" : ", latents -> ",
              latents_path.c_str());
  return 0;
}

}  // namespace ladder
