// Why this file exists: the tables of src/model/lpips_network.h, read from lpips 0.1.4's
// pretrained_networks.py and torchvision's alexnet/vgg16 `features` (docs/reference-lpips.md).
#include "model/lpips_network.h"

#include "core/check.h"

namespace ladder {

LpipsNetwork parse_lpips_network(const std::string& name) {
  if (name == "alex") return LpipsNetwork::kAlex;
  if (name == "vgg" || name == "vgg16") return LpipsNetwork::kVgg;
  throw UsageError("perceptual.network must be alex or vgg, got '" + name + "'");
}

const char* lpips_network_name(LpipsNetwork network) { return network == LpipsNetwork::kAlex ? "alex" : "vgg"; }

const std::vector<LpipsSlice>& lpips_slices(LpipsNetwork network) {
  // AlexNet: conv 11×11/4 pad 2, [pool 3/2, conv 5×5 pad 2], [pool 3/2, conv 3×3], conv 3×3, conv 3×3.
  static const std::vector<LpipsSlice> alex = {
      {0, 0, {{0, 3, 64, 11, 4, 2}}},
      {3, 2, {{3, 64, 192, 5, 1, 2}}},
      {3, 2, {{6, 192, 384, 3, 1, 1}}},
      {0, 0, {{8, 384, 256, 3, 1, 1}}},
      {0, 0, {{10, 256, 256, 3, 1, 1}}},
  };
  // VGG16: 13 convolutions 3×3 pad 1; a 2×2/2 pool before slices 2 to 5.
  static const std::vector<LpipsSlice> vgg = {
      {0, 0, {{0, 3, 64, 3, 1, 1}, {2, 64, 64, 3, 1, 1}}},
      {2, 2, {{5, 64, 128, 3, 1, 1}, {7, 128, 128, 3, 1, 1}}},
      {2, 2, {{10, 128, 256, 3, 1, 1}, {12, 256, 256, 3, 1, 1}, {14, 256, 256, 3, 1, 1}}},
      {2, 2, {{17, 256, 512, 3, 1, 1}, {19, 512, 512, 3, 1, 1}, {21, 512, 512, 3, 1, 1}}},
      {2, 2, {{24, 512, 512, 3, 1, 1}, {26, 512, 512, 3, 1, 1}, {28, 512, 512, 3, 1, 1}}},
  };
  return network == LpipsNetwork::kAlex ? alex : vgg;
}

}  // namespace ladder
