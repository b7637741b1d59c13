// Why this file exists: the two feature networks LPIPS can use, as the `lpips` package builds
// them from torchvision (docs/reference-lpips.md): which convolutions and max pools each of the
// five slices holds, their torchvision indices (the parameter names are
// net.slice{K}.{index}.weight/bias), and the channels each slice's feature map has (which the
// linear layers lin{K}.model.1.weight weigh). Every convolution is followed by a ReLU.
#pragma once

#include <string>
#include <vector>

namespace ladder {

enum class LpipsNetwork { kAlex, kVgg };

// "alex" or "vgg" (also "vgg16", as lpips accepts); anything else throws UsageError.
LpipsNetwork parse_lpips_network(const std::string& name);
const char* lpips_network_name(LpipsNetwork network);

struct LpipsConv {
  int index;  // in torchvision's `features`
  int cin, cout, kernel, stride, padding;  // symmetric padding
};

struct LpipsSlice {
  int pool_kernel = 0, pool_stride = 0;  // a max pool before the convolutions (0: none)
  std::vector<LpipsConv> convs;          // each followed by a ReLU
  int channels() const { return convs.back().cout; }
};

// The five slices, in order; the output of slice K is feature map K.
const std::vector<LpipsSlice>& lpips_slices(LpipsNetwork network);

}  // namespace ladder
