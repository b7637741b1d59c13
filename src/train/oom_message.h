// Why this file exists: a CUDA out-of-memory failure is the most likely error of a
// high-resolution run, and a bare "cudaErrorMemoryAllocation" does not say what to change.
// This builds the one line the user sees: where it happened (rung, resolution, micro-batch,
// recompute), the memory picture, and the config change to try next.
#pragma once

#include <cstdint>
#include <string>

namespace ladder {

struct OutOfMemoryContext {
  int rung = 0;                     // index into stages.resolutions (as `stage` in metrics)
  int resolution = 0;               // images are resolution × resolution
  int micro_batch = 1;              // per rank per micro-step
  std::string recompute = "none";   // "none" or "blocks"
  int64_t requested_bytes = -1;     // the allocation that failed (-1 unknown)
  int64_t held_bytes = 0;           // what ladder's allocations hold on the device
  int64_t device_free_bytes = -1;   // cudaMemGetInfo (-1 unknown)
  int64_t device_total_bytes = -1;  // cudaMemGetInfo (-1 unknown)
};

// One line, no newline, e.g.
//   CUDA out of memory at rung 2 (1024x1024), micro-batch 8, recompute none: asked for
//   2.00 GiB, ladder holds 75.10 GiB, the device has 1.20 GiB free of 79.20 GiB; try
//   train.micro_batch = 4 or train.recompute = blocks
std::string out_of_memory_message(const OutOfMemoryContext& context);

}  // namespace ladder
