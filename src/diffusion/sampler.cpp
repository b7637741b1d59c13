// Why this file exists: the implementation of generation and of the samples' grid.
#include "diffusion/sampler.h"

#include <algorithm>

#include "core/check.h"
#include "core/rng.h"
#include "io/image_grid.h"

namespace ladder {

TensorF initial_noise(const Shape& latents, uint64_t seed, const std::vector<int64_t>& indices) {
  const int64_t per_image = latents.numel() / std::max<int64_t>(latents.n, 1);
  TensorF noise(latents);
  for (int64_t b = 0; b < latents.n; ++b) {
    Rng rng(seed ^ 0x73616d706c65ull, static_cast<uint64_t>(indices.empty() ? b : indices[b]));
    for (int64_t e = 0; e < per_image; ++e) noise[b * per_image + e] = static_cast<float>(rng.normal());
  }
  return noise;
}

Samples generate(const NoiseSchedule& schedule, Prediction prediction, const Shape& latents,
                 const SamplerSettings& settings, const Predictor& predict) {
  LADDER_CHECK_USAGE(settings.sampler == "ddim" || settings.sampler == "ddpm",
                     "sampler must be ddim or ddpm (got '", settings.sampler, "')");
  LADDER_CHECK_USAGE(settings.steps >= 1 && settings.steps <= schedule.timesteps(), "sampling steps = ",
                     settings.steps, " must be in [1, ", schedule.timesteps(), "] (diffusion.timesteps)");
  const StepSettings step_settings{prediction, settings.clip_sample, 0.0};
  Samples out;
  out.timesteps = sampling_timesteps(schedule.timesteps(), settings.steps);
  const int64_t count = latents.n, per_image = latents.numel() / latents.n;
  LADDER_CHECK(settings.indices.empty() || static_cast<int64_t>(settings.indices.size()) == count, "generate: ",
               settings.indices.size(), " indices for ", count, " images");
  auto index = [&](int64_t b) { return static_cast<uint64_t>(settings.indices.empty() ? b : settings.indices[b]); };
  out.noise = initial_noise(latents, settings.seed, settings.indices);
  out.latents.reshape_or_allocate(latents);
  std::copy_n(out.noise.data(), out.noise.numel(), out.latents.data());
  const int64_t chunk_size = std::max<int64_t>(1, settings.chunk);
  std::vector<float> step_noise(static_cast<size_t>(per_image * chunk_size));
  TensorF chunk, predicted;
  for (size_t k = 0; k < out.timesteps.size(); ++k) {
    const int t = out.timesteps[k], t_prev = k + 1 < out.timesteps.size() ? out.timesteps[k + 1] : -1;
    for (int64_t first = 0; first < count; first += chunk_size) {
      const int64_t n = std::min(chunk_size, count - first);
      float* x = out.latents.data() + first * per_image;
      chunk.reshape_or_allocate({n, latents.h, latents.w, latents.c});
      std::copy_n(x, n * per_image, chunk.data());
      predict(chunk, std::vector<float>(static_cast<size_t>(n), static_cast<float>(t)), predicted);
      if (settings.sampler == "ddim") {
        ddim_step(schedule, step_settings, t, t_prev, n * per_image, predicted.data(), nullptr, x);
        continue;
      }
      for (int64_t b = 0; b < n; ++b) {  // ε of the step, keyed by (seed, step, image)
        Rng rng(settings.seed ^ 0x7374657073ull, splitmix64(k) ^ index(first + b));
        for (int64_t e = 0; e < per_image; ++e) step_noise[b * per_image + e] = static_cast<float>(rng.normal());
      }
      ddpm_step(schedule, step_settings, t, t_prev, n * per_image, predicted.data(), step_noise.data(), x);
    }
  }
  return out;
}

void write_sample_grid(const std::string& path, const TensorF& images, int64_t columns) {
  const Shape shape = images.shape();
  const int64_t per_image = shape.h * shape.w * shape.c;
  std::vector<TensorF> rows;
  for (int64_t first = 0; first < shape.n; first += columns) {
    const int64_t n = std::min<int64_t>(columns, shape.n - first);
    TensorF row({columns, shape.h, shape.w, shape.c});
    std::fill(row.data(), row.data() + row.numel(), 1.f);  // white where the last row is short
    std::copy_n(images.data() + first * per_image, n * per_image, row.data());
    rows.push_back(std::move(row));
  }
  std::vector<const TensorF*> pointers;
  for (const TensorF& row : rows) pointers.push_back(&row);
  io::write_image_grid(path, pointers);
}

}  // namespace ladder
