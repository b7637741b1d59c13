// Why this file exists: `ladder sample`, images from a diffusion UNet and an autoencoder.
#pragma once

#include <string>
#include <vector>

namespace ladder {

int sample_command(const std::vector<std::string>& args);  // args: everything after "sample"
std::string sample_usage();

}  // namespace ladder
