// Why this file exists: stage 1's critics (model/autoencoder_critics.h) beside the autoencoder
// on any device. The CPU and GPU autoencoder devices derive from WithCritics, which builds the
// critics on the device's backend (after the model, so that the discriminator's parameters
// follow the autoencoder's in the store) and forwards to them what the trainer tells a device
// (the ZeRO-2 observer, recompute) and asks of it (the buffers).
#pragma once

#include <utility>
#include <vector>

#include "config/config.h"
#include "core/model_buffers.h"
#include "core/params.h"
#include "model/autoencoder_critics.h"
#include "model/layer.h"

namespace ladder {

// Base: a device of the autoencoder with a member `backend_` of type B (CpuDevice,
// CudaDevice); its constructor takes (config, store, more...).
template <class Base, class B>
class WithCritics : public Base {
 public:
  template <class... More>
  WithCritics(const Config& config, ParamStore& store, More&&... more)
      : Base(config, store, std::forward<More>(more)...), critics_(config, store, this->backend_) {}

  void set_backward_observer(BackwardObserver* observer) override {
    Base::set_backward_observer(observer);
    critics_.set_backward_observer(observer);
  }
  void set_recompute(bool recompute) override {
    Base::set_recompute(recompute);
    critics_.set_recompute(recompute);
  }
  std::vector<ModelBuffer> buffers() override { return critics_.buffers(); }
  void load_buffers(const std::vector<ModelBuffer>& buffers) override { critics_.load_buffers(buffers); }

 protected:
  AutoencoderCritics<B> critics_;
};

}  // namespace ladder
