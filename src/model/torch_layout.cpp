// Why this file exists: the layout and dtype conversions between ladder's parameters and
// PyTorch tensors.
#include "model/torch_layout.h"

#include <cstring>
#include <map>
#include <set>

#include "core/bf16.h"
#include "core/check.h"
#include "core/fp16.h"

namespace ladder {
namespace {

std::string describe(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + ")";
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return count;
}

// Index maps of a convolution weight: ladder (o, y, x, i) ↔ PyTorch (o, i, y, x).
template <class Fn>
void for_each_conv_element(const std::vector<int64_t>& shape, Fn fn) {
  const int64_t out = shape[0], kh = shape[1], kw = shape[2], in = shape[3];
  for (int64_t o = 0; o < out; ++o)
    for (int64_t y = 0; y < kh; ++y)
      for (int64_t x = 0; x < kw; ++x)
        for (int64_t i = 0; i < in; ++i)
          fn(((o * kh + y) * kw + x) * in + i, ((o * in + i) * kh + y) * kw + x);
}

// PyTorch-ordered fp32 values of `stored` (raw little-endian bytes of `dtype`).
bool decode(const std::string& dtype, const std::vector<uint8_t>& stored, std::vector<float>& out) {
  const size_t n = out.size();
  if (dtype == "F32") {
    std::memcpy(out.data(), stored.data(), n * 4);
  } else if (dtype == "F64") {
    for (size_t k = 0; k < n; ++k) {
      double value;
      std::memcpy(&value, stored.data() + 8 * k, 8);
      out[k] = static_cast<float>(value);
    }
  } else if (dtype == "BF16" || dtype == "F16") {
    for (size_t k = 0; k < n; ++k) {
      uint16_t bits;
      std::memcpy(&bits, stored.data() + 2 * k, 2);
      bf16 b;
      b.bits = bits;
      out[k] = dtype == "BF16" ? static_cast<float>(b) : half_bits_to_float(bits);
    }
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::vector<int64_t> torch_shape(const std::vector<int64_t>& shape) {
  if (shape.size() == 4) return {shape[0], shape[3], shape[1], shape[2]};
  return shape;
}

io::SafetensorToWrite torch_tensor(const std::string& name, const std::vector<int64_t>& shape,
                                   const float* values, const std::string& dtype) {
  const int64_t n = numel(shape);
  std::vector<float> ordered(static_cast<size_t>(n));
  if (shape.size() == 4)
    for_each_conv_element(shape, [&](int64_t ladder_index, int64_t torch_index) {
      ordered[torch_index] = values[ladder_index];
    });
  else
    std::memcpy(ordered.data(), values, static_cast<size_t>(n) * sizeof(float));
  io::SafetensorToWrite tensor{name, dtype, torch_shape(shape), {}};
  const int64_t element = io::safetensors_dtype_bytes(dtype);
  LADDER_CHECK(dtype == "F32" || dtype == "BF16" || dtype == "F16", "export dtype ", dtype);
  tensor.bytes.resize(static_cast<size_t>(n * element));
  for (int64_t k = 0; k < n; ++k) {
    if (dtype == "F32") {
      std::memcpy(tensor.bytes.data() + 4 * k, &ordered[k], 4);
    } else {
      const uint16_t bits =
          dtype == "BF16" ? bf16::round_to_bits(ordered[k]) : float_to_half_bits(ordered[k]);
      std::memcpy(tensor.bytes.data() + 2 * k, &bits, 2);
    }
  }
  return tensor;
}

void load_torch_weights(const io::SafetensorsHeader& file, ParamStore& params, const std::string& optional_prefix) {
  auto optional = [&](const std::string& name) { return !optional_prefix.empty() && name.rfind(optional_prefix, 0) == 0; };
  std::set<std::string> ours;
  for (const ParamEntry& entry : params.entries()) ours.insert(entry.name);
  std::map<std::string, const io::SafetensorEntry*> stored;
  for (const io::SafetensorEntry& entry : file.tensors)
    if (!optional(entry.name) || ours.count(entry.name) > 0) stored[entry.name] = &entry;
  std::vector<std::string> faults;
  std::vector<std::pair<const ParamEntry*, const io::SafetensorEntry*>> matched;
  for (const ParamEntry& entry : params.entries()) {
    auto found = stored.find(entry.name);
    if (found == stored.end()) {
      if (!optional(entry.name)) faults.push_back("missing " + entry.name);
      continue;
    }
    const io::SafetensorEntry& tensor = *found->second;
    if (tensor.shape != torch_shape(entry.shape))
      faults.push_back(entry.name + " has shape " + describe(tensor.shape) + ", expected " +
                       describe(torch_shape(entry.shape)));
    else if (tensor.dtype != "F32" && tensor.dtype != "BF16" && tensor.dtype != "F16" &&
             tensor.dtype != "F64")
      faults.push_back(entry.name + " has dtype " + tensor.dtype + " (F32, BF16, F16 or F64 needed)");
    else
      matched.push_back({&entry, &tensor});
    stored.erase(found);
  }
  for (const auto& [name, tensor] : stored) faults.push_back("unexpected " + name);
  if (!faults.empty()) {
    std::string text;
    for (size_t i = 0; i < faults.size() && i < 10; ++i) text += (i ? "; " : "") + faults[i];
    if (faults.size() > 10) text += detail::concat("; and ", faults.size() - 10, " more");
    const bool described = file.metadata.count("config") > 0;
    throw UsageError(detail::concat(file.path, ": weights do not match the model (", text, ")",
                                    described ? "" : "; the file names no ladder model: give it with "
                                                     "the model.* keys of the config or flags"));
  }
  for (const auto& [entry, tensor] : matched) {
    std::vector<float> ordered(static_cast<size_t>(entry->numel));
    decode(tensor->dtype, io::read_safetensors_tensor(file, *tensor), ordered);
    float* values = params.values() + entry->offset;
    if (entry->shape.size() == 4)
      for_each_conv_element(entry->shape, [&](int64_t ladder_index, int64_t torch_index) {
        values[ladder_index] = ordered[torch_index];
      });
    else
      std::memcpy(values, ordered.data(), ordered.size() * sizeof(float));
  }
}

}  // namespace ladder
