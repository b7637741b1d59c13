// Why this file exists: ladder's parameters as a PyTorch/MONAI state dict. The names are
// already MONAI's (the parameter table uses them); the layouts differ only for convolution
// weights, which ladder keeps as (Cout, K, K, Cin) for NHWC and PyTorch as (Cout, Cin, kh, kw).
// Linear weights are (out, in) in both, vectors are vectors. Used by `ladder export`
// (checkpoint → safetensors) and by train.init_from / reconstruct reading a safetensors file
// (ladder's own or one saved from PyTorch with safetensors.torch.save_file).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/params.h"
#include "io/safetensors.h"

namespace ladder {

// The PyTorch shape of a parameter stored with ladder shape `shape`.
std::vector<int64_t> torch_shape(const std::vector<int64_t>& shape);

// One parameter's values (ladder layout, fp32) as a tensor of `dtype` (F32, BF16 or F16) in
// PyTorch layout, little-endian bytes.
io::SafetensorToWrite torch_tensor(const std::string& name, const std::vector<int64_t>& shape,
                                   const float* values, const std::string& dtype);

// Fills params.values() from `file`, strictly: every parameter present with its PyTorch shape
// and a float dtype (F32 as is; BF16, F16 and F64 converted to fp32, which for BF16 and F16
// is exact), nothing unexpected. Otherwise one UsageError listing up to 10 mismatches
// (missing, unexpected, wrong shape, unsupported dtype).
// Parameters whose names start with `optional_prefix` (when not empty) may be absent from
// either side: missing ones keep their values, extra ones are skipped (a discriminator beside
// an autoencoder, train.init_from from weights without one).
void load_torch_weights(const io::SafetensorsHeader& file, ParamStore& params, const std::string& optional_prefix = "");

}  // namespace ladder
