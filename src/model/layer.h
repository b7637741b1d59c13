// Why this file exists: the one interface every model part implements. There is no autograd
// tape (BRIEF §3): each layer has an explicit forward, which keeps what its backward needs,
// and an explicit backward. Outputs and input gradients are tensors the layer owns and
// reuses from step to step; parameter gradients accumulate into the flat buffer.
#pragma once

#include <memory>
#include <vector>

#include "core/tensor.h"

namespace ladder {

class Layer {
 public:
  virtual ~Layer() = default;
  // x must stay alive and unchanged until backward(). Returns the layer's output.
  virtual const TensorF& forward(const TensorF& x) = 0;
  // dy: gradient of the last forward's output. Returns the input gradient (written);
  // parameter gradients are accumulated (+=).
  virtual const TensorF& backward(const TensorF& dy) = 0;
};

// Layers applied one after the other.
class Sequential : public Layer {
 public:
  void add(std::unique_ptr<Layer> layer) { layers_.push_back(std::move(layer)); }
  size_t size() const { return layers_.size(); }

  const TensorF& forward(const TensorF& x) override {
    const TensorF* current = &x;
    for (auto& layer : layers_) current = &layer->forward(*current);
    return *current;
  }
  const TensorF& backward(const TensorF& dy) override {
    const TensorF* current = &dy;
    for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) current = &(*it)->backward(*current);
    return *current;
  }

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
};

}  // namespace ladder
