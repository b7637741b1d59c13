// Why this file exists: the copies around each host collective of StagedCommunicator.
#ifdef LADDER_WITH_CUDA
#include "comm/staged_communicator.h"

#include <cuda_runtime.h>

#include "core/check.h"
#include "core/cuda_check.h"

namespace ladder {
namespace {

void to_host(char* host, const void* device, int64_t bytes) {
  if (bytes > 0) LADDER_CUDA_CHECK(cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost));
}

void to_device(void* device, const char* host, int64_t bytes) {
  if (bytes == 0) return;
  LADDER_CUDA_CHECK(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice));
  // From pageable memory cudaMemcpy may return before the DMA lands: wait, so that kernels on
  // other (non-blocking) streams see the data.
  LADDER_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace

StagedCommunicator::StagedCommunicator(Communicator& host) : host_(host) {
  LADDER_CHECK(!host.device_buffers(), "StagedCommunicator needs a host communicator, got ",
               host.backend());
}

char* StagedCommunicator::staging(int which, int64_t bytes) {
  std::vector<char>& buffer = which == 0 ? send_ : recv_;
  if (static_cast<int64_t>(buffer.size()) < bytes) buffer.resize(static_cast<size_t>(bytes));
  return buffer.data();
}

void StagedCommunicator::all_reduce_sum(void* data, int64_t count, DType dtype) {
  detail::check_collective_buffers(rank(), "all_reduce_sum", count, data, data);
  const int64_t bytes = count * dtype_bytes(dtype);
  char* host = staging(0, bytes);
  to_host(host, data, bytes);
  host_.all_reduce_sum(host, count, dtype);
  to_device(data, host, bytes);
}

void StagedCommunicator::reduce_scatter_sum(const void* send, void* recv, int64_t count,
                                            DType dtype) {
  detail::check_collective_buffers(rank(), "reduce_scatter_sum", count, send, recv);
  const int64_t bytes = count * dtype_bytes(dtype);
  char* host_send = staging(0, bytes * world());
  char* host_recv = staging(1, bytes);
  to_host(host_send, send, bytes * world());
  host_.reduce_scatter_sum(host_send, host_recv, count, dtype);
  to_device(recv, host_recv, bytes);
}

void StagedCommunicator::all_gather(const void* send, void* recv, int64_t count, DType dtype) {
  detail::check_collective_buffers(rank(), "all_gather", count, send, recv);
  const int64_t bytes = count * dtype_bytes(dtype);
  char* host_send = staging(0, bytes);
  char* host_recv = staging(1, bytes * world());
  to_host(host_send, send, bytes);
  host_.all_gather(host_send, host_recv, count, dtype);
  to_device(recv, host_recv, bytes * world());
}

void StagedCommunicator::broadcast(void* data, int64_t count, DType dtype, int root) {
  detail::check_collective_buffers(rank(), "broadcast", count, data, data);
  detail::check_broadcast_root(rank(), root, world());
  const int64_t bytes = count * dtype_bytes(dtype);
  char* host = staging(0, bytes);
  to_host(host, data, bytes);
  host_.broadcast(host, count, dtype, root);
  to_device(data, host, bytes);
}

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
