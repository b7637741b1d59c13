// Why this file exists: the activation container. Every tensor is NHWC (BRIEF §3): images
// are (N, H, W, C); token sequences are (N, 1, L, C). Storage is f32, f64 (gradient tests)
// or bf16, always zero-initialised host memory owned by the tensor.
#pragma once

#include <cstdint>
#include <string>

#include "core/bf16.h"
#include "core/check.h"
#include "core/host_buffer.h"

namespace ladder {

struct Shape {
  int64_t n = 1, h = 1, w = 1, c = 1;

  int64_t numel() const { return n * h * w * c; }
  int64_t pixels() const { return h * w; }  // spatial positions per image
  bool operator==(const Shape& o) const { return n == o.n && h == o.h && w == o.w && c == o.c; }
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const {
    return detail::concat("(", n, ", ", h, ", ", w, ", ", c, ")");
  }
};

template <class T>
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape) : shape_(shape), storage_(shape.numel()) {}

  const Shape& shape() const { return shape_; }
  int64_t numel() const { return shape_.numel(); }
  bool empty() const { return numel() == 0 || storage_.size() == 0; }
  T* data() { return storage_.data(); }
  const T* data() const { return storage_.data(); }
  T& operator[](int64_t i) { return storage_.data()[i]; }
  const T& operator[](int64_t i) const { return storage_.data()[i]; }
  T& at(int64_t n, int64_t h, int64_t w, int64_t c) {
    return storage_.data()[((n * shape_.h + h) * shape_.w + w) * shape_.c + c];
  }
  const T& at(int64_t n, int64_t h, int64_t w, int64_t c) const {
    return storage_.data()[((n * shape_.h + h) * shape_.w + w) * shape_.c + c];
  }

  // Gives this tensor `shape`, reallocating (zeroed) only when the element count changes.
  void reshape_or_allocate(Shape shape) {
    if (shape.numel() != storage_.size()) storage_ = HostBuffer<T>(shape.numel());
    shape_ = shape;
  }
  // Same elements, new shape of equal element count.
  void reshape(Shape shape) {
    LADDER_CHECK(shape.numel() == shape_.numel(), "reshape ", shape_.str(), " to ", shape.str());
    shape_ = shape;
  }
  void release() {
    storage_ = HostBuffer<T>();
    shape_ = Shape{0, 0, 0, 0};
  }

 private:
  Shape shape_{0, 0, 0, 0};
  HostBuffer<T> storage_;
};

using TensorF = Tensor<float>;

}  // namespace ladder
