// Why this file exists: fuzzes safetensors files (io/safetensors.cpp, hand-written on
// nlohmann-json) as ladder reads them: the header (offsets, shapes, dtypes against the file's
// length), every tensor's bytes, the "config" of __metadata__ (model_flags_of, what
// `ladder sample` and `ladder export` read), and a MONAI/PyTorch weight load
// (load_torch_weights: names, PyTorch layouts, BF16/F16/F64 conversion) into a parameter
// table shaped like the file's own tensors. A bad file must end in ladder::Error.
#include <cstdint>
#include <vector>

#include "core/check.h"
#include "core/params.h"
#include "fuzz_support.h"
#include "io/safetensors.h"
#include "model/torch_layout.h"
#include "train/resume.h"

namespace {

constexpr int64_t kMaxElements = int64_t{1} << 22;  // the target's own table stays small

// A table with one parameter per tensor, in ladder's layout: PyTorch (Cout, Cin, kh, kw)
// convolutions become (Cout, kh, kw, Cin); everything else is as stored.
void fill_table(const ladder::io::SafetensorsHeader& header, ladder::ParamStore& params) {
  int64_t total = 0;
  for (const ladder::io::SafetensorEntry& entry : header.tensors) {
    std::vector<int64_t> shape = entry.shape;
    if (shape.empty()) return;
    for (int64_t d : shape)
      if (d < 1 || d > kMaxElements) return;
    if (shape.size() == 4) shape = {entry.shape[0], entry.shape[2], entry.shape[3], entry.shape[1]};
    total += entry.numel();
    if (total > kMaxElements) return;
    params.add(entry.name, shape, ladder::ParamInit::kZeros, 1, false);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ladder;
  const std::string path = fuzz::write_file(fuzz::scratch() / "weights.safetensors",
                                            std::string(reinterpret_cast<const char*>(data), size));
  try {
    const io::SafetensorsHeader header = io::read_safetensors_header(path);
    for (const io::SafetensorEntry& entry : header.tensors) io::read_safetensors_tensor(header, entry);
    model_flags_of(path);
    ParamStore params;
    fill_table(header, params);
    params.allocate();
    load_torch_weights(header, params);
  } catch (const Error&) {
    // the documented outcome of a bad file
  }
  return 0;
}
