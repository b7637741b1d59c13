// Why this file exists: sampling, decoding and featurising a UNet's images for `ladder
// evaluate` (cli/evaluate_samples.h).
#include "cli/evaluate_samples.h"

#include <algorithm>
#include <cmath>

#include "cli/latent_scale.h"
#include "comm/mpi_session.h"
#include "config/config.h"
#include "core/check.h"
#include "core/work_progress.h"
#include "diffusion/sampler.h"
#include "io/image_grid.h"
#include "train/compute_device.h"
#include "train/resume.h"

namespace ladder {

HeldImages generate_samples(const SampleScoring& s, Communicator& comm) {
  std::vector<std::string> unet_flags = model_flags_of(s.checkpoint);
  unet_flags.insert(unet_flags.end(), s.flags.begin(), s.flags.end());
  const Config config = load_config(s.config, unet_flags);
  LADDER_CHECK_USAGE(config.model.kind == "diffusion_unet", s.checkpoint, ": model.kind is ", config.model.kind,
                     "; scoring samples needs a diffusion UNet");
  LADDER_CHECK_USAGE(!s.autoencoder.empty(), "evaluate: a UNet's samples need --autoencoder to decode them");
  LADDER_CHECK_USAGE(s.count >= 2, "evaluate: --count must be at least 2 to score samples");
  std::vector<std::string> ae_flags = model_flags_of(s.autoencoder);
  ae_flags.insert(ae_flags.end(), {"--run.device", config.run.device});
  const Config ae_config = load_config("", ae_flags);
  LADDER_CHECK_USAGE(ae_config.model.latent_channels == config.model.in_channels, s.autoencoder, ": ",
                     ae_config.model.latent_channels, " latent channels, but the UNet takes ",
                     config.model.in_channels);
  const int64_t downsampling = int64_t{1} << (ae_config.model.channels.size() - 1);
  LADDER_CHECK_USAGE(s.resolution > 0 && s.resolution % downsampling == 0,
                     "evaluate: --resolution must be a multiple of the autoencoder's downsampling ", downsampling);
  const int64_t side = s.resolution / downsampling;
  const double scale = find_scale_factor(0, s.checkpoint, config);
  LADDER_CHECK_USAGE(scale > 0, "evaluate: the UNet's latent scale factor is unknown (its checkpoint names no latent "
                                "store that holds one)");

  ParamStore decoder_params, unet_params;
  const int gpu = MpiSession::node_local_rank();
  std::unique_ptr<AutoencoderDevice> decoder = make_loaded_autoencoder(ae_config, decoder_params, gpu, s.autoencoder);
  std::unique_ptr<UNetDevice> unet;
  if (!s.noise_baseline) unet = make_loaded_unet(config, unet_params, gpu, s.checkpoint, s.ema ? "ema" : "master");
  const NoiseSchedule schedule({config.diffusion.schedule, config.diffusion.timesteps, config.diffusion.beta_start,
                                config.diffusion.beta_end});
  SamplerSettings settings;
  settings.sampler = s.sampler;
  settings.steps = s.steps;
  settings.seed = s.seed;
  settings.clip_sample = config.diffusion.clip_sample;
  settings.chunk = 1;  // one image per UNet pass: no image depends on which others share its batch
  for (int64_t i = comm.rank(); i < s.count; i += comm.world()) settings.indices.push_back(i);
  const int64_t held = static_cast<int64_t>(settings.indices.size());
  const int channels = config.model.in_channels;
  // Generated a block of images at a time (each image's noise is keyed by its index, so the
  // blocks change nothing), for the progress line.
  constexpr int64_t kBlock = 16;
  const std::vector<int64_t> indices = settings.indices;
  TensorF latents({held, side, side, channels});
  const int64_t per_latent = side * side * channels;
  WorkProgress progress(s.noise_baseline ? "noise latents" : "samples", held);
  for (int64_t first = 0; first < held; first += kBlock) {
    const int64_t n = std::min(kBlock, held - first);
    settings.indices.assign(indices.begin() + first, indices.begin() + first + n);
    const TensorF block =
        s.noise_baseline
            ? initial_noise({n, side, side, channels}, settings.seed, settings.indices)
            : generate(schedule, parse_prediction(config.diffusion.prediction), {n, side, side, channels}, settings,
                       [&](const TensorF& x, const std::vector<float>& t, TensorF& out) { unet->predict(x, t, out); })
                  .latents;
    std::copy_n(block.data(), n * per_latent, latents.data() + first * per_latent);
    progress.advance(first + n);
  }

  // Decoded one at a time, saved as uint8 as the PNG writer saves it (data::unit_to_byte).
  const int image_channels = ae_config.model.in_channels;
  const int64_t per_image = int64_t(s.resolution) * s.resolution * image_channels;
  HeldImages out;
  out.held = held, out.total = s.count, out.side = s.resolution, out.channels = image_channels;
  std::vector<uint8_t>& saved = out.bytes;
  saved.resize(static_cast<size_t>(held * per_image));
  TensorF latent({1, side, side, channels}), image;
  for (int64_t k = 0; k < held; ++k) {
    for (int64_t e = 0; e < per_latent; ++e)
      latent[e] = static_cast<float>(latents[k * per_latent + e] / scale);
    decoder->decode(latent, image);
    for (int64_t e = 0; e < per_image; ++e) saved[k * per_image + e] = data::unit_to_byte(image[e]);
  }
  return out;
}

}  // namespace ladder
