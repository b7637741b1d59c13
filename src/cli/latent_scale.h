// Why this file exists: a UNet generates latents in the scaled space it was trained in, and
// whoever decodes them (`ladder sample`, `ladder evaluate` of samples) must divide by the same
// scale factor; this finds it where ladder keeps it.
#pragma once

#include <string>

#include "config/config.h"

namespace ladder {

// The scale factor the UNet's latents were trained with: `flag` when > 0, else the UNet file's
// safetensors metadata, else the latent store its checkpoint's config names, else the one
// config.data.store names; 0 when none says.
double find_scale_factor(double flag, const std::string& checkpoint, const Config& config);

}  // namespace ladder
