// Why this file exists: the one interface every model part implements. There is no autograd
// tape (BRIEF §3): each layer has an explicit forward, which keeps what its backward needs,
// and an explicit backward. Outputs and input gradients are tensors the layer owns and
// reuses from step to step; parameter gradients accumulate into the flat buffer.
//
// Every layer is a template on its backend B (model/cpu_backend.h, model/cuda_backend.h):
// B::Tensor holds activations (NHWC, element type B::Value) and B runs the ops, so the one
// model code runs on the CPU reference and on the GPU.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"  // Shape


namespace ladder {

// Told during a backward that every parameter gradient at flat offsets ≥ `offset` is final
// for this micro-step (ZeRO-2 sends those buckets while the backward goes on).
class BackwardObserver {
 public:
  virtual ~BackwardObserver() = default;
  virtual void gradients_ready_from(int64_t offset) = 0;
};

template <class B>
class Layer {
 public:
  using Tensor = typename B::Tensor;

  virtual ~Layer() = default;
  // x must stay alive and unchanged until backward(). Returns the layer's output.
  virtual const Tensor& forward(const Tensor& x) = 0;
  // dy: gradient of the last forward's output. Returns the input gradient (written);
  // parameter gradients are accumulated (+=).
  virtual const Tensor& backward(const Tensor& dy) = 0;
  // Frees the tensors the layer keeps between calls (outputs, saved statistics, gradients);
  // the next forward allocates them again. Activation recompute uses it.
  virtual void release_activations() {}
  // Whether backward() accumulates the parameter gradients (the default) or computes only the
  // input gradient: a model that judges another's output (the discriminator during the
  // generator's backward) passes the gradient through without learning from it.
  virtual void set_parameter_gradients(bool accumulate) { (void)accumulate; }
};

// Layers applied one after the other. Layers register their parameters in order, so each
// layer's parameters start at a known flat offset; after a layer's backward every gradient
// from that offset up is final, which the observer (if any) is told.
template <class B>
class Sequential : public Layer<B> {
 public:
  using Tensor = typename B::Tensor;

  // first_param_offset: the flat-buffer offset of the layer's first parameter (the store's
  // count before the layer was constructed).
  void add(std::unique_ptr<Layer<B>> layer, int64_t first_param_offset) {
    layers_.push_back(std::move(layer));
    first_offsets_.push_back(first_param_offset);
  }
  size_t size() const { return layers_.size(); }
  void set_observer(BackwardObserver* observer) { observer_ = observer; }
  void set_parameter_gradients(bool accumulate) override {
    for (auto& layer : layers_) layer->set_parameter_gradients(accumulate);
  }
  void release_activations() override {
    for (auto& layer : layers_) layer->release_activations();
  }

  const Tensor& forward(const Tensor& x) override {
    const Tensor* current = &x;
    for (auto& layer : layers_) current = &layer->forward(*current);
    return *current;
  }
  const Tensor& backward(const Tensor& dy) override {
    const Tensor* current = &dy;
    for (size_t i = layers_.size(); i-- > 0;) {
      current = &layers_[i]->backward(*current);
      if (observer_ != nullptr) observer_->gradients_ready_from(first_offsets_[i]);
    }
    return *current;
  }

 private:
  std::vector<std::unique_ptr<Layer<B>>> layers_;
  std::vector<int64_t> first_offsets_;
  BackwardObserver* observer_ = nullptr;
};

}  // namespace ladder
