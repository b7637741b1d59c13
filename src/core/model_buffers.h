// Why this file exists: model state that is not a parameter, PyTorch's "buffers" (BatchNorm's
// running statistics). Buffers are not trained, sharded or reduced: training never reads them,
// but a checkpoint keeps them (in its manifest, from rank 0, as PyTorch DDP's state dict is
// rank 0's buffers) and `ladder export` writes them under their state-dict names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ladder {

struct ModelBuffer {
  enum class Type { kF32, kI64 };

  std::string name;            // ladder's name, e.g. "discriminator.0.adn.N.running_mean"
  Type type = Type::kF32;
  std::vector<int64_t> shape;  // {} for a scalar (num_batches_tracked)
  std::vector<double> values;  // the F32 values widened (exact), or the I64 counts (below 2^53)
};

// "F32" / "I64", as safetensors spells them.
inline const char* type_name(ModelBuffer::Type type) { return type == ModelBuffer::Type::kF32 ? "F32" : "I64"; }

}  // namespace ladder
