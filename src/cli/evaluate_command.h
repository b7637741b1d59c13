// Why this file exists: `ladder evaluate`, the scores papers report: FID and KID between
// feature files (io/feature_file.h), InceptionV3 features of an image store, and an
// autoencoder's rFID, PSNR, L1, SSIM and MS-SSIM, and FID and KID of a UNet's samples.
#pragma once

#include <string>
#include <vector>

namespace ladder {

int evaluate_command(const std::vector<std::string>& args);  // args: everything after "evaluate"
std::string evaluate_usage();

}  // namespace ladder
