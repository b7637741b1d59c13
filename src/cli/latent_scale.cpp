// Why this file exists: where a UNet's latent scale factor is found (cli/latent_scale.h).
#include "cli/latent_scale.h"

#include <cstdlib>
#include <filesystem>

#include "io/checkpoint_manifest.h"
#include "io/latent_store.h"
#include "io/safetensors.h"

namespace ladder {

double find_scale_factor(double flag, const std::string& checkpoint, const Config& config) {
  if (flag > 0) return flag;
  std::error_code error;
  if (std::filesystem::is_regular_file(checkpoint, error)) {
    const io::SafetensorsHeader header = io::read_safetensors_header(checkpoint);
    auto found = header.metadata.find("scale_factor");
    if (found != header.metadata.end()) return std::atof(found->second.c_str());
  } else if (std::filesystem::is_directory(checkpoint, error)) {  // a checkpoint of a diffusion run
    const auto keys = io::read_manifest((std::filesystem::path(checkpoint) / io::kManifestFile).string()).config;
    const auto store = keys.find("data.store");
    const double scale = store != keys.end() ? io::scale_factor_of(store->second) : 0.0;
    if (scale > 0) return scale;
  }
  return io::scale_factor_of(config.data.store);
}

}  // namespace ladder
