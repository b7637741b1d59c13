// Why this file exists: `ladder sample`, generating images with a diffusion UNet: initial
// noise x_T ~ N(0, 1) keyed by (seed, image), S reverse steps of DDIM (η = 0) or DDPM
// (diffusion/diffusion_math.h, one timestep convention for every S), then the latents divided
// by the scale factor and decoded by the autoencoder into a grid. --save-latents writes the
// initial noise, the timesteps and the final latents for comparison with other tools (the
// MONAI parity script replays them). Runs the UNet on the CPU, in one process.
#include "cli/sample_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/arguments.h"
#include "config/config.h"
#include "core/check.h"
#include "core/log.h"
#include "core/rng.h"
#include "diffusion/diffusion_math.h"
#include "io/hdf5.h"
#include "io/image_grid.h"
#include "io/latent_store.h"
#include "io/safetensors.h"
#include "model/cpu_backend.h"
#include "model/diffusion_unet.h"
#include "train/compute_device.h"
#include "train/resume.h"

namespace ladder {
namespace {

constexpr int64_t kChunk = 8;     // images per UNet forward
constexpr int kGridColumns = 8;

// The scale factor the latents were trained with: the flag, else the UNet file's metadata,
// else the latent store its config names; 0 when none says.
double find_scale_factor(double flag, const std::string& checkpoint, const Config& config) {
  if (flag > 0) return flag;
  std::error_code error;
  if (std::filesystem::is_regular_file(checkpoint, error)) {
    const io::SafetensorsHeader header = io::read_safetensors_header(checkpoint);
    auto found = header.metadata.find("scale_factor");
    if (found != header.metadata.end()) return std::atof(found->second.c_str());
  }
  if (!config.data.store.empty() && io::is_latent_store(config.data.store))
    return io::LatentStoreReader(config.data.store).info().scale_factor;
  return 0;
}

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
         "                     --sampler ddpm|ddim --steps S [--seed K] --out grid.png\n"
         "                     [--save-latents F.h5] [--scale-factor X] [--latent-resolution r]\n"
         "                     [--config F.ini] [--section.key value ...]\n"
         "\n"
         "Generates N images: x_T ~ N(0, 1) (keyed by seed and image), S reverse steps visiting\n"
         "t = T-1 - k*floor(T/S) (each step goes to the next visited t), latents / scale factor\n"
         "decoded by the autoencoder. S = T with ddpm is the full DDPM chain. The UNet comes from\n"
         "a safetensors file with MONAI DiffusionModelUNet names (give its keys: --model.kind\n"
         "diffusion_unet --model.channels ... --model.head_channels ...); the diffusion keys\n"
         "(schedule, betas, prediction) from the config or flags. Runs on the CPU, one process.\n"
         "\n"
         "options:\n"
         "  --checkpoint UNET     the UNet weights\n"
         "  --autoencoder AE      decodes the latents (a checkpoint or safetensors file)\n"
         "  --count N             images (default 8)\n"
         "  --resolution R        image resolution (latents are R / the autoencoder's downsampling)\n"
         "  --latent-resolution r the latent size when there is no autoencoder (--save-latents only)\n"
         "  --sampler S           ddim (default) or ddpm\n"
         "  --steps S             reverse steps (default 50)\n"
         "  --seed K              seed of the noise (default 0)\n"
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
    else if (arg == "--ema") throw UsageError("sample: --ema: EMA weights are not implemented yet");
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
  std::unique_ptr<ComputeDevice> decoder;
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
    decoder = make_loaded_device(ae_config, decoder_params, 0, autoencoder);
  }
  LADDER_CHECK_USAGE(side > 0, "sample: give --autoencoder and --resolution, or --latent-resolution");
  const int64_t unet_downsampling = int64_t{1} << (config.model.channels.size() - 1);
  LADDER_CHECK_USAGE(side % unet_downsampling == 0, "sample: latents of ", side, "x", side,
                     " do not divide by the UNet's ", unet_downsampling, "x downsampling");
  const double scale = out.empty() ? 1.0 : find_scale_factor(scale_flag, checkpoint, config);
  LADDER_CHECK_USAGE(scale > 0, "sample: the latents' scale factor is unknown: give --scale-factor (the latent "
                     "store's scale_factor attribute)");

  ParamStore params;
  CpuBackend backend;
  DiffusionUNet<CpuBackend> unet(config.model, params, backend);
  params.allocate();
  warm_start(checkpoint, params);

  const NoiseSchedule schedule({config.diffusion.schedule, config.diffusion.timesteps, config.diffusion.beta_start,
                                config.diffusion.beta_end});
  const StepSettings settings{parse_prediction(config.diffusion.prediction), true, 0.0};
  const std::vector<int> timesteps = sampling_timesteps(config.diffusion.timesteps, static_cast<int>(steps));
  const int channels = config.model.in_channels;
  const int64_t per_image = side * side * channels;
  TensorF noise({count, side, side, channels}), x({count, side, side, channels});
  for (int64_t b = 0; b < count; ++b) {
    Rng rng(seed ^ 0x73616d706c65ull, static_cast<uint64_t>(b));
    for (int64_t e = 0; e < per_image; ++e) noise[b * per_image + e] = static_cast<float>(rng.normal());
  }
  std::copy(noise.data(), noise.data() + noise.numel(), x.data());
  std::vector<float> step_noise(static_cast<size_t>(per_image * kChunk));
  TensorF chunk;
  for (size_t k = 0; k < timesteps.size(); ++k) {
    const int t = timesteps[k], t_prev = k + 1 < timesteps.size() ? timesteps[k + 1] : -1;
    for (int64_t first = 0; first < count; first += kChunk) {
      const int64_t n = std::min(kChunk, count - first);
      chunk.reshape_or_allocate({n, side, side, channels});
      std::copy_n(x.data() + first * per_image, n * per_image, chunk.data());
      const TensorF& prediction = unet.forward(chunk, std::vector<float>(static_cast<size_t>(n), static_cast<float>(t)));
      for (int64_t b = 0; b < n; ++b) {  // ε of the step, keyed by (seed, step, image)
        Rng rng(seed ^ 0x7374657073ull, splitmix64(k) ^ static_cast<uint64_t>(first + b));
        for (int64_t e = 0; e < per_image; ++e) step_noise[b * per_image + e] = static_cast<float>(rng.normal());
      }
      float* target = x.data() + first * per_image;
      if (sampler == "ddim")
        ddim_step(schedule, settings, t, t_prev, n * per_image, prediction.data(), nullptr, target);
      else
        ddpm_step(schedule, settings, t, t_prev, n * per_image, prediction.data(), step_noise.data(), target);
    }
  }
  if (!latents_path.empty()) write_latents(latents_path, noise, x, timesteps, sampler, seed);
  if (!out.empty()) {
    TensorF scaled({count, side, side, channels}), images;
    for (int64_t i = 0; i < x.numel(); ++i) scaled[i] = static_cast<float>(x[i] / scale);
    decoder->decode(scaled, images);
    const Shape shape = images.shape();
    std::vector<TensorF> rows;
    for (int64_t first = 0; first < count; first += kGridColumns) {
      const int64_t n = std::min<int64_t>(kGridColumns, count - first);
      TensorF row({kGridColumns, shape.h, shape.w, shape.c});
      std::fill(row.data(), row.data() + row.numel(), 1.f);  // white where the last row is short
      std::copy_n(images.data() + first * shape.h * shape.w * shape.c, n * shape.h * shape.w * shape.c, row.data());
      rows.push_back(std::move(row));
    }
    std::vector<const TensorF*> pointers;
    for (const TensorF& row : rows) pointers.push_back(&row);
    io::write_image_grid(out, pointers);
  }
  std::printf("sample: %lld images, %s with %lld steps (t %d..%d), latents %lldx%lldx%d%s%s%s%s\n",
              static_cast<long long>(count), sampler.c_str(), static_cast<long long>(steps), timesteps.front(),
              timesteps.back(), static_cast<long long>(side), static_cast<long long>(side), channels,
              out.empty() ? "" : " -> ", out.c_str(), latents_path.empty() ? "" : ", latents -> ",
              latents_path.c_str());
  return 0;
}

}  // namespace ladder
