// Why this file exists: the CPU InceptionNetwork and the choice between it and the GPU's
// (eval/inception_network.h).
#include "eval/inception_network.h"

#include "core/check.h"
#include "model/cpu_backend.h"

namespace ladder::eval {
namespace {

class CpuInceptionNetwork final : public InceptionNetwork {
 public:
  explicit CpuInceptionNetwork(const std::string& weights) : network_(backend_) { network_.load_or_randomize(weights); }
  void features(const uint8_t* images, int n, int h, int w, int c, InceptionInput mode,
                std::vector<float>& out) override {
    network_.features(images, n, h, w, c, mode, out);
  }

 private:
  CpuBackend backend_;
  InceptionV3<CpuBackend> network_;
};

}  // namespace

std::unique_ptr<InceptionNetwork> make_inception_network(const std::string& weights, bool gpu) {
#ifdef LADDER_WITH_CUDA
  if (gpu) return make_cuda_inception_network(weights);
#else
  LADDER_CHECK_USAGE(!gpu, "InceptionV3 on a GPU needs a CUDA build of ladder");
#endif
  return std::make_unique<CpuInceptionNetwork>(weights);
}

}  // namespace ladder::eval
