// Why this file exists: `ladder reconstruct`, the evaluation of an autoencoder: N images of one
// level through encoder and decoder (z = μ), mean L1 and PSNR, a grid or the reconstructions.
#pragma once

#include <string>
#include <vector>

namespace ladder {

int reconstruct_command(const std::vector<std::string>& args);  // everything after "reconstruct"
std::string reconstruct_usage();

}  // namespace ladder
