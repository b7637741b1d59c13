// Why this file exists: the one interface every model part implements. There is no autograd
// tape (BRIEF §3): each layer has an explicit forward, which keeps what its backward needs,
// and an explicit backward. Outputs and input gradients are tensors the layer owns and
// reuses from step to step; parameter gradients accumulate into the flat buffer.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace ladder {

// Told during a backward that every parameter gradient at flat offsets ≥ `offset` is final
// for this micro-step (ZeRO-2 sends those buckets while the backward goes on).
class BackwardObserver {
 public:
  virtual ~BackwardObserver() = default;
  virtual void gradients_ready_from(int64_t offset) = 0;
};

class Layer {
 public:
  virtual ~Layer() = default;
  // x must stay alive and unchanged until backward(). Returns the layer's output.
  virtual const TensorF& forward(const TensorF& x) = 0;
  // dy: gradient of the last forward's output. Returns the input gradient (written);
  // parameter gradients are accumulated (+=).
  virtual const TensorF& backward(const TensorF& dy) = 0;
  // Frees the tensors the layer keeps between calls (outputs, saved statistics, gradients);
  // the next forward allocates them again. Activation recompute uses it.
  virtual void release_activations() {}
};

// Layers applied one after the other. Layers register their parameters in order, so each
// layer's parameters start at a known flat offset; after a layer's backward every gradient
// from that offset up is final, which the observer (if any) is told.
class Sequential : public Layer {
 public:
  // first_param_offset: the flat-buffer offset of the layer's first parameter (the store's
  // count before the layer was constructed).
  void add(std::unique_ptr<Layer> layer, int64_t first_param_offset) {
    layers_.push_back(std::move(layer));
    first_offsets_.push_back(first_param_offset);
  }
  size_t size() const { return layers_.size(); }
  void set_observer(BackwardObserver* observer) { observer_ = observer; }

  const TensorF& forward(const TensorF& x) override {
    const TensorF* current = &x;
    for (auto& layer : layers_) current = &layer->forward(*current);
    return *current;
  }
  const TensorF& backward(const TensorF& dy) override {
    const TensorF* current = &dy;
    for (size_t i = layers_.size(); i-- > 0;) {
      current = &layers_[i]->backward(*current);
      if (observer_ != nullptr) observer_->gradients_ready_from(first_offsets_[i]);
    }
    return *current;
  }

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<int64_t> first_offsets_;
  BackwardObserver* observer_ = nullptr;
};

}  // namespace ladder
