// Why this file exists: InceptionV3 on the rank's GPU (eval/inception_network.h): an fp32
// CUDA backend on an allocator and a stream of its own, pointed at the network's weights,
// uploaded once after they are read. fp32 whatever the training precision: the scores are
// compared with tools that compute in fp32. Only in CUDA builds.
#ifdef LADDER_WITH_CUDA
#include <memory>

#include "eval/inception_network.h"
#include "kernels/cuda/device_memory.h"
#include "model/cuda_backend.h"
#include "train/device_parameters.h"

namespace ladder::eval {
namespace {

class CudaInceptionNetwork final : public InceptionNetwork {
 public:
  explicit CudaInceptionNetwork(const std::string& weights) : backend_(allocator_, stream_), network_(backend_) {
    network_.load_or_randomize(weights);  // host values; the folded BatchNorms go to the device
    weights_ = std::make_unique<DeviceParameters<float>>(allocator_, network_.params(), stream_);
    backend_.set_parameters(weights_->values(), weights_->working(), nullptr);
  }
  void features(const uint8_t* images, int n, int h, int w, int c, InceptionInput mode,
                std::vector<float>& out) override {
    network_.features(images, n, h, w, c, mode, out);  // floats_to_host waits for the stream
  }

 private:
  cuda::DeviceAllocator allocator_;
  cuda::CudaStream stream_;
  CudaBackend<float> backend_;
  InceptionV3<CudaBackend<float>> network_;
  std::unique_ptr<DeviceParameters<float>> weights_;
};

}  // namespace

std::unique_ptr<InceptionNetwork> make_cuda_inception_network(const std::string& weights) {
  return std::make_unique<CudaInceptionNetwork>(weights);
}

}  // namespace ladder::eval

#endif  // LADDER_WITH_CUDA
