// Why this file exists: the list of backends every model template is compiled for, in one
// place. The model's .cpp files end with LADDER_INSTANTIATE_FOR_BACKENDS(Class), which
// instantiates Class<B> for the CPU backend, the plan's counting backend and, in CUDA builds, for the GPU backend in each
// compute precision (fp32, bf16, fp16).
#pragma once

#include "model/cpu_backend.h"
#include "model/plan_backend.h"
#ifdef LADDER_WITH_CUDA
#include "model/cuda_backend.h"
#endif

#ifdef LADDER_WITH_CUDA
#define LADDER_INSTANTIATE_FOR_BACKENDS(Class)      \
  template class Class<::ladder::CpuBackend>;       \
  template class Class<::ladder::PlanBackend>;      \
  template class Class<::ladder::CudaBackend<float>>; \
  template class Class<::ladder::CudaBackend<__nv_bfloat16>>; \
  template class Class<::ladder::CudaBackend<__half>>;
#else
#define LADDER_INSTANTIATE_FOR_BACKENDS(Class) \
  template class Class<::ladder::CpuBackend>;  \
  template class Class<::ladder::PlanBackend>;
#endif
