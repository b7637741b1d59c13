// Why this file exists: the oneDNN primitives behind OneDnnConvolutions, cached per shape.
#include "kernels/cpu/onednn_conv.h"

#include <dnnl.hpp>

#include <algorithm>
#include <map>
#include <unordered_map>
#include <tuple>

#include "core/check.h"
#include "core/host_buffer.h"

namespace ladder::cpu {
namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

using Key = std::tuple<int, int, int, int, int, int, int, int, int, int, int, int, bool>;
Key key_of(const Conv2dDims& d, bool bias) {
  return {d.n, d.h, d.w, d.cin, d.cout, d.kernel_h, d.kernel_w, d.stride, d.pad_top, d.pad_left, d.pad_bottom, d.pad_right, bias};
}

// Winograd F(4×4, 3×3) (oneDNN's jit_wino_4x3, AVX-512) for the forward and backward-data
// passes where it pays: 3×3 stride-1 "same" convolutions with at least 32 channels in and out
// and at least 1024 output pixels per call; about twice the direct kernels' speed there
// (bench/kernels/bench_onednn_conv). Its transforms round differently from a direct sum, to
// ~1e-6 of the largest output (test_onednn_conv), and are deterministic as the direct ones are.
// oneDNN 2.6's Winograd backward-filter kernel crashes on some of these shapes (2×16×16,
// 256 → 256), so the filter gradient stays direct. Where Winograd is not available (a CPU
// without AVX-512) the direct kernels serve every pass.
bool winograd_pays(const Conv2dDims& d) {
  const bool same_3x3 = d.kernel_h == 3 && d.kernel_w == 3 && d.stride == 1 && d.pad_top == 1 && d.pad_left == 1 && d.pad_bottom == 1 &&
                        d.pad_right == 1;
  return same_3x3 && std::min(d.cin, d.cout) >= 32 && int64_t(d.n) * d.out_h() * d.out_w() >= 1024;
}

// The three passes of one shape: their primitive descriptors and primitives, and the reorders
// around them: our weights into each pass's layout, our NHWC activations into and out of the
// Winograd passes' blocked layout (each reorder empty when the layout is ours), and the filter
// gradient from oneDNN's layout added into ours (a reorder with a sum post-op: dw +=
// reorder(g), one pass over memory instead of a copy and an add).
struct Shape {
  dnnl::memory::desc x, y, w_user, b;  // ours: (N, H, W, Cin), (N, Ho, Wo, Cout), (Cout, K, K, Cin), (Cout)
  bool winograd = false;  // forward and backward data
  dnnl::convolution_forward::primitive_desc forward_pd;
  dnnl::convolution_backward_data::primitive_desc data_pd;
  dnnl::convolution_backward_weights::primitive_desc filter_pd;
  dnnl::convolution_forward forward;
  dnnl::convolution_backward_data data;
  dnnl::convolution_backward_weights filter;
  dnnl::reorder to_forward_weights, to_data_weights, add_filter_gradient;
  dnnl::reorder to_forward_x, from_forward_y, to_data_dy, from_data_dx;
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
  // oneDNN's layout; scratch: oneDNN's scratchpad; bias: the bias gradient; source, result:
  // a Winograd pass's input and output activations in its blocked layout.
  Workspace weights_space, scratch_space, bias_space, source_space, result_space;

  Shape& shape(const Conv2dDims& d, bool bias) {
    std::unique_ptr<Shape>& found = shapes[key_of(d, bias)];
    if (found) return *found;
    auto s = std::make_unique<Shape>();
    const dnnl::memory::dims strides = {d.stride, d.stride}, left = {d.pad_top, d.pad_left},
                             right = {d.pad_bottom, d.pad_right};
    s->x = dnnl::memory::desc({d.n, d.cin, d.h, d.w}, dt::f32, tag::nhwc);
    s->y = dnnl::memory::desc({d.n, d.cout, d.out_h(), d.out_w()}, dt::f32, tag::nhwc);
    s->w_user = dnnl::memory::desc({d.cout, d.cin, d.kernel_h, d.kernel_w}, dt::f32, tag::ohwi);
    const dnnl::memory::desc w_any({d.cout, d.cin, d.kernel_h, d.kernel_w}, dt::f32, tag::any);
    s->b = bias ? dnnl::memory::desc({d.cout}, dt::f32, tag::x) : dnnl::memory::desc();
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    // x, y: the activations' descriptors the pass is asked for (ours, or `any` for Winograd).
    auto forward_pd = [&](dnnl::algorithm algorithm, const dnnl::memory::desc& x, const dnnl::memory::desc& y) {
      return dnnl::convolution_forward::primitive_desc(
          dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algorithm, x, w_any, s->b, y, strides,
                                          left, right),
          attr, engine);
    };
    auto data_pd = [&](dnnl::algorithm algorithm, const dnnl::memory::desc& x, const dnnl::memory::desc& y,
                       const dnnl::convolution_forward::primitive_desc& hint) {
      return dnnl::convolution_backward_data::primitive_desc(
          dnnl::convolution_backward_data::desc(algorithm, x, w_any, y, strides, left, right), attr, engine, hint);
    };
    const auto direct = dnnl::algorithm::convolution_direct;
    // The direct forward is also the hint of the (always direct) backward-filter pass.
    const dnnl::convolution_forward::primitive_desc direct_forward_pd = forward_pd(direct, s->x, s->y);
    if (winograd_pays(d)) {
      const dnnl::memory::desc x_any({d.n, d.cin, d.h, d.w}, dt::f32, tag::any);
      const dnnl::memory::desc y_any({d.n, d.cout, d.out_h(), d.out_w()}, dt::f32, tag::any);
      try {
        const auto winograd = dnnl::algorithm::convolution_winograd;
        s->forward_pd = forward_pd(winograd, x_any, y_any);
        s->data_pd = data_pd(winograd, x_any, y_any, s->forward_pd);
        s->winograd = true;
      } catch (const dnnl::error&) {
        // Not on this CPU: the direct passes serve.
      }
    }
    if (!s->winograd) {
      s->forward_pd = direct_forward_pd;
      s->data_pd = data_pd(direct, s->x, s->y, direct_forward_pd);
    }
    // The bias gradient is always computed here (db may be null: then it is discarded).
    const dnnl::memory::desc db({d.cout}, dt::f32, tag::x);
    s->filter_pd = dnnl::convolution_backward_weights::primitive_desc(
        dnnl::convolution_backward_weights::desc(direct, s->x, w_any, db, s->y, strides, left, right), attr, engine,
        direct_forward_pd);
    s->forward = dnnl::convolution_forward(s->forward_pd);
    s->data = dnnl::convolution_backward_data(s->data_pd);
    s->filter = dnnl::convolution_backward_weights(s->filter_pd);
    // A reorder from `from` to `to`; empty when both are the same layout and there is nothing
    // to add.
    auto reorder = [&](const dnnl::memory::desc& from, const dnnl::memory::desc& to,
                       const dnnl::primitive_attr& with = dnnl::primitive_attr()) {
      if (from == to && with.get_post_ops().len() == 0) return dnnl::reorder();
      return dnnl::reorder(dnnl::reorder::primitive_desc(engine, from, engine, to, with));
    };
    s->to_forward_weights = reorder(s->w_user, s->forward_pd.weights_desc());
    s->to_data_weights = reorder(s->w_user, s->data_pd.weights_desc());
    s->to_forward_x = reorder(s->x, s->forward_pd.src_desc());
    s->from_forward_y = reorder(s->forward_pd.dst_desc(), s->y);
    s->to_data_dy = reorder(s->y, s->data_pd.diff_dst_desc());
    s->from_data_dx = reorder(s->data_pd.diff_src_desc(), s->x);
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

  // An input of ours (`data`, in layout `ours`) in the layout `wanted`: itself when the two
  // are the same, else converted by `to_wanted` into `space`.
  dnnl::memory input(const dnnl::memory::desc& ours, const dnnl::memory::desc& wanted, dnnl::reorder& to_wanted,
                     const float* data, Workspace& space) {
    dnnl::memory user = wrap(ours, data);
    if (wanted == ours) return user;
    dnnl::memory converted(wanted, engine, space.at_least(wanted.get_size()));
    to_wanted.execute(stream, user, converted);
    return converted;
  }
  // Where a pass writes an output of ours (`data`, layout `ours`) that it makes in layout
  // `made`: `data` itself when the two are the same, else `space`, which deliver() then
  // converts into `data` by `to_ours`.
  dnnl::memory output(const dnnl::memory::desc& ours, const dnnl::memory::desc& made, float* data, Workspace& space) {
    if (made == ours) return wrap(ours, data);
    return dnnl::memory(made, engine, space.at_least(made.get_size()));
  }
  void deliver(dnnl::memory& made, dnnl::reorder& to_ours, const dnnl::memory::desc& ours, float* data) {
    if (made.get_desc() == ours) return;
    dnnl::memory user = wrap(ours, data);
    to_ours.execute(stream, made, user);
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
  const dnnl::convolution_forward::primitive_desc& pd = s.forward_pd;
  dnnl::memory result = m.output(s.y, pd.dst_desc(), y, m.result_space);
  std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC, m.input(s.x, pd.src_desc(), s.to_forward_x, x, m.source_space)},
      {DNNL_ARG_WEIGHTS, m.input(s.w_user, pd.weights_desc(), s.to_forward_weights, w, m.weights_space)},
      {DNNL_ARG_DST, result},
      {DNNL_ARG_SCRATCHPAD, m.scratchpad(pd.scratchpad_desc())}};
  if (b != nullptr) args[DNNL_ARG_BIAS] = m.wrap(s.b, b);
  s.forward.execute(m.stream, args);
  m.deliver(result, s.from_forward_y, s.y, y);
  m.stream.wait();
}

void OneDnnConvolutions::backward_data(const Conv2dDims& d, const float* dy, const float* w, float* dx) {
  Impl& m = *impl_;
  Shape& s = m.shape(d, true);
  const dnnl::convolution_backward_data::primitive_desc& pd = s.data_pd;
  dnnl::memory result = m.output(s.x, pd.diff_src_desc(), dx, m.result_space);
  s.data.execute(m.stream,
                 {{DNNL_ARG_DIFF_DST, m.input(s.y, pd.diff_dst_desc(), s.to_data_dy, dy, m.source_space)},
                  {DNNL_ARG_WEIGHTS, m.input(s.w_user, pd.weights_desc(), s.to_data_weights, w, m.weights_space)},
                  {DNNL_ARG_DIFF_SRC, result},
                  {DNNL_ARG_SCRATCHPAD, m.scratchpad(pd.scratchpad_desc())}});
  m.deliver(result, s.from_data_dx, s.x, dx);
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
      bytes.source = reorder_bytes(s.forward_pd.src_desc(), s.x);
      bytes.result = reorder_bytes(s.forward_pd.dst_desc(), s.y);
      break;
    case Pass::kBackwardData:
      bytes.weights = reorder_bytes(s.data_pd.weights_desc(), s.w_user);
      bytes.scratch = s.data_pd.scratchpad_desc().get_size();
      bytes.source = reorder_bytes(s.data_pd.diff_dst_desc(), s.y);
      bytes.result = reorder_bytes(s.data_pd.diff_src_desc(), s.x);
      break;
    case Pass::kBackwardFilter:
      bytes.weights = s.filter_pd.diff_weights_desc().get_size();
      bytes.scratch = s.filter_pd.scratchpad_desc().get_size();
      bytes.bias = size_t(d.cout) * 4;
      break;
  }
  return bytes;
}

bool OneDnnConvolutions::uses_winograd(const Conv2dDims& d, bool bias) {
  return impl_->shape(d, bias).winograd;
}

std::string onednn_isa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

}  // namespace ladder::cpu
