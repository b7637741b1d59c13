// Why this file exists: the wording of the out-of-memory line and its suggestions.
#include "train/oom_message.h"

#include "core/check.h"
#include "core/format.h"

namespace ladder {

std::string out_of_memory_message(const OutOfMemoryContext& c) {
  std::string line = detail::concat("CUDA out of memory at rung ", c.rung, " (", c.resolution,
                                    "x", c.resolution, "), micro-batch ", c.micro_batch,
                                    ", recompute ", c.recompute, ": ");
  if (c.requested_bytes >= 0) line += "asked for " + human_bytes(c.requested_bytes) + ", ";
  line += "ladder holds " + human_bytes(c.held_bytes);
  if (c.device_free_bytes >= 0 && c.device_total_bytes >= 0)
    line += ", the device has " + human_bytes(c.device_free_bytes) + " free of " +
            human_bytes(c.device_total_bytes);
  else if (c.device_free_bytes >= 0)
    line += ", the device has " + human_bytes(c.device_free_bytes) + " free";
  else if (c.device_total_bytes >= 0)
    line += ", the device has " + human_bytes(c.device_total_bytes) + " in total";

  const bool can_halve = c.micro_batch > 1;
  const bool can_recompute = c.recompute == "none";
  if (can_halve && can_recompute)
    line += detail::concat("; try train.micro_batch = ", c.micro_batch / 2,
                           " or train.recompute = blocks");
  else if (can_halve)
    line += detail::concat("; try train.micro_batch = ", c.micro_batch / 2);
  else if (can_recompute)
    line += "; try train.recompute = blocks";
  else
    line += "; the model does not fit at this resolution on this GPU even at micro-batch 1 "
            "with recompute; use a GPU with more memory";
  return line;
}

}  // namespace ladder
