// Why this file exists: `ladder encode`, the stage-2 data: an image store through a trained
// autoencoder into a latent store (io/latent_store.h), once, on every rank of the job.
#pragma once

#include <string>
#include <vector>

namespace ladder {

int encode_command(const std::vector<std::string>& args);  // args: everything after "encode"
std::string encode_usage();

}  // namespace ladder
