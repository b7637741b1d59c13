// Why this file exists: the oneDNN primitives behind OneDnnConvolutions, cached per shape.
#include "kernels/cpu/onednn_conv.h"

#include <dnnl.hpp>

#include <map>
#include <unordered_map>
#include <tuple>

#include "core/check.h"
#include "core/host_buffer.h"

namespace ladder::cpu {
namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

using Key = std::tuple<int, int, int, int, int, int, int, int, int, int, int, bool>;
Key key_of(const Conv2dDims& d, bool bias) {
  return {d.n, d.h, d.w, d.cin, d.cout, d.kernel, d.stride, d.pad_top, d.pad_left, d.pad_bottom, d.pad_right, bias};
}

// The three passes of one shape: their primitive descriptors and primitives, and the reorders
// around them: our weights into each pass's layout (empty when it is ours), and the filter
// gradient from oneDNN's layout added into ours (a reorder with a sum post-op: dw += reorder(g),
// one pass over memory instead of a copy and an add).
struct Shape {
  dnnl::memory::desc x, y, w_user, b;
  dnnl::convolution_forward::primitive_desc forward_pd;
  dnnl::convolution_backward_data::primitive_desc data_pd;
  dnnl::convolution_backward_weights::primitive_desc filter_pd;
  dnnl::convolution_forward forward;
  dnnl::convolution_backward_data data;
  dnnl::convolution_backward_weights filter;
  dnnl::reorder to_forward_weights, to_data_weights, add_filter_gradient;
};

// A buffer that only grows: the calls reuse it, so after the first step no call allocates,
// zeroes or page-faults its scratch.
struct Workspace {
  HostBuffer<float> buffer;
  float* at_least(size_t bytes) {
    const int64_t floats = OneDnnConvolutions::workspace_floats(bytes);
    if (floats > buffer.size()) buffer = HostBuffer<float>(floats);
    return buffer.data();
  }
};

size_t reorder_bytes(const dnnl::memory::desc& wanted, const dnnl::memory::desc& user) {
  return wanted == user ? 0 : wanted.get_size();
}

}  // namespace

struct OneDnnConvolutions::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<Key, std::unique_ptr<Shape>> shapes;
  // weights: the reordered weights (forward, backward data) or the filter gradient in
  // oneDNN's layout; scratch: oneDNN's scratchpad; bias: the bias gradient.
  Workspace weights_space, scratch_space, bias_space;

  Shape& shape(const Conv2dDims& d, bool bias) {
    std::unique_ptr<Shape>& found = shapes[key_of(d, bias)];
    if (found) return *found;
    auto s = std::make_unique<Shape>();
    const dnnl::memory::dims strides = {d.stride, d.stride}, left = {d.pad_top, d.pad_left},
                             right = {d.pad_bottom, d.pad_right};
    s->x = dnnl::memory::desc({d.n, d.cin, d.h, d.w}, dt::f32, tag::nhwc);
    s->y = dnnl::memory::desc({d.n, d.cout, d.out_h(), d.out_w()}, dt::f32, tag::nhwc);
    s->w_user = dnnl::memory::desc({d.cout, d.cin, d.kernel, d.kernel}, dt::f32, tag::ohwi);
    const dnnl::memory::desc w_any({d.cout, d.cin, d.kernel, d.kernel}, dt::f32, tag::any);
    s->b = bias ? dnnl::memory::desc({d.cout}, dt::f32, tag::x) : dnnl::memory::desc();
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const auto algorithm = dnnl::algorithm::convolution_direct;
    s->forward_pd = dnnl::convolution_forward::primitive_desc(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algorithm, s->x, w_any, s->b, s->y,
                                        strides, left, right),
        attr, engine);
    s->data_pd = dnnl::convolution_backward_data::primitive_desc(
        dnnl::convolution_backward_data::desc(algorithm, s->x, w_any, s->y, strides, left, right), attr, engine,
        s->forward_pd);
    // The bias gradient is always computed here (db may be null: then it is discarded).
    const dnnl::memory::desc db({d.cout}, dt::f32, tag::x);
    s->filter_pd = dnnl::convolution_backward_weights::primitive_desc(
        dnnl::convolution_backward_weights::desc(algorithm, s->x, w_any, db, s->y, strides, left, right), attr,
        engine, s->forward_pd);
    s->forward = dnnl::convolution_forward(s->forward_pd);
    s->data = dnnl::convolution_backward_data(s->data_pd);
    s->filter = dnnl::convolution_backward_weights(s->filter_pd);
    auto reorder = [&](const dnnl::memory::desc& from, const dnnl::memory::desc& to,
                       const dnnl::primitive_attr& with = dnnl::primitive_attr()) {
      return dnnl::reorder(dnnl::reorder::primitive_desc(engine, from, engine, to, with));
    };
    if (!(s->forward_pd.weights_desc() == s->w_user))
      s->to_forward_weights = reorder(s->w_user, s->forward_pd.weights_desc());
    if (!(s->data_pd.weights_desc() == s->w_user)) s->to_data_weights = reorder(s->w_user, s->data_pd.weights_desc());
    dnnl::post_ops accumulate;
    accumulate.append_sum(1.0f);
    dnnl::primitive_attr accumulating;
    accumulating.set_post_ops(accumulate);
    s->add_filter_gradient = reorder(s->filter_pd.diff_weights_desc(), s->w_user, accumulating);
    found = std::move(s);
    return *found;
  }

  dnnl::memory wrap(const dnnl::memory::desc& desc, const float* data) {
    return dnnl::memory(desc, engine, const_cast<float*>(data));
  }

  // Our (Cout, K, K, Cin) weights in the layout `wanted`, by `to_wanted` (a reorder when it
  // differs from ours).
  dnnl::memory weights(const Shape& s, const dnnl::memory::desc& wanted, dnnl::reorder& to_wanted, const float* w) {
    dnnl::memory user = wrap(s.w_user, w);
    if (wanted == s.w_user) return user;
    dnnl::memory converted(wanted, engine, weights_space.at_least(reorder_bytes(wanted, s.w_user)));
    to_wanted.execute(stream, user, converted);
    return converted;
  }

  dnnl::memory scratchpad(const dnnl::memory::desc& desc) {
    return dnnl::memory(desc, engine, scratch_space.at_least(desc.get_size()));
  }
};

OneDnnConvolutions::OneDnnConvolutions() : impl_(std::make_unique<Impl>()) {}
OneDnnConvolutions::~OneDnnConvolutions() = default;

void OneDnnConvolutions::forward(const Conv2dDims& d, const float* x, const float* w, const float* b, float* y) {
  Impl& m = *impl_;
  Shape& s = m.shape(d, b != nullptr);
  std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, m.wrap(s.x, x)},
                                                {DNNL_ARG_WEIGHTS, m.weights(s, s.forward_pd.weights_desc(), s.to_forward_weights, w)},
                                                {DNNL_ARG_DST, m.wrap(s.y, y)},
                                                {DNNL_ARG_SCRATCHPAD, m.scratchpad(s.forward_pd.scratchpad_desc())}};
  if (b != nullptr) args[DNNL_ARG_BIAS] = m.wrap(s.b, b);
  s.forward.execute(m.stream, args);
  m.stream.wait();
}

void OneDnnConvolutions::backward_data(const Conv2dDims& d, const float* dy, const float* w, float* dx) {
  Impl& m = *impl_;
  Shape& s = m.shape(d, true);
  s.data.execute(m.stream, {{DNNL_ARG_DIFF_DST, m.wrap(s.y, dy)},
                            {DNNL_ARG_WEIGHTS, m.weights(s, s.data_pd.weights_desc(), s.to_data_weights, w)},
                            {DNNL_ARG_DIFF_SRC, m.wrap(s.x, dx)},
                            {DNNL_ARG_SCRATCHPAD, m.scratchpad(s.data_pd.scratchpad_desc())}});
  m.stream.wait();
}

void OneDnnConvolutions::backward_filter(const Conv2dDims& d, const float* x, const float* dy, float* dw,
                                         float* db) {
  Impl& m = *impl_;
  Shape& s = m.shape(d, true);
  // oneDNN writes the gradients; ours accumulate: into the workspace, then added into dw.
  const dnnl::memory::desc& wanted = s.filter_pd.diff_weights_desc();
  dnnl::memory grad_memory(wanted, m.engine, m.weights_space.at_least(wanted.get_size()));
  float* grad_bias = m.bias_space.at_least(size_t(d.cout) * sizeof(float));
  s.filter.execute(m.stream, {{DNNL_ARG_SRC, m.wrap(s.x, x)},
                              {DNNL_ARG_DIFF_DST, m.wrap(s.y, dy)},
                              {DNNL_ARG_DIFF_WEIGHTS, grad_memory},
                              {DNNL_ARG_DIFF_BIAS, m.wrap(dnnl::memory::desc({d.cout}, dt::f32, tag::x), grad_bias)},
                              {DNNL_ARG_SCRATCHPAD, m.scratchpad(s.filter_pd.scratchpad_desc())}});
  dnnl::memory accumulated = m.wrap(s.w_user, dw);
  s.add_filter_gradient.execute(m.stream, grad_memory, accumulated);
  m.stream.wait();
  if (db != nullptr) add_accumulate<float>(d.cout, grad_bias, db);
}

OneDnnConvolutions::WorkspaceBytes OneDnnConvolutions::workspace_bytes(const Conv2dDims& d, bool bias, Pass pass) {
  const Shape& s = impl_->shape(d, bias);
  WorkspaceBytes bytes;
  switch (pass) {
    case Pass::kForward:
      bytes.weights = reorder_bytes(s.forward_pd.weights_desc(), s.w_user);
      bytes.scratch = s.forward_pd.scratchpad_desc().get_size();
      break;
    case Pass::kBackwardData:
      bytes.weights = reorder_bytes(s.data_pd.weights_desc(), s.w_user);
      bytes.scratch = s.data_pd.scratchpad_desc().get_size();
      break;
    case Pass::kBackwardFilter:
      bytes.weights = s.filter_pd.diff_weights_desc().get_size();
      bytes.scratch = s.filter_pd.scratchpad_desc().get_size();
      bytes.bias = size_t(d.cout) * 4;
      break;
  }
  return bytes;
}

}  // namespace ladder::cpu
