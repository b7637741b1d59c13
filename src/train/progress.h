// Why this file exists: the line rank 0 prints every `run.log_every` steps, for people who
// watch a run for days: where the run is (step of the run, rung, step of the rung), its loss,
// its speed, the ETA of the rung and of the whole run, peak memory (and the share of the GPU's),
// the data wait and the communication share. The run's ETA counts the later rungs at the
// current speed scaled by their pixels per image, and says it is an estimate. Plain lines,
// never redrawn: mpirun's output is not a terminal even when it looks like one.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace ladder {

struct ProgressPoint {
  int64_t step = 0;           // optimizer steps done in the run
  int rung = 0;
  int64_t rung_step = 0;      // steps done in the rung
  double img_per_s = 0;
  double loss = 0, lr = 0, grad_norm = 0;
  std::vector<std::pair<std::string, double>> loss_terms;  // the task's (rec_loss, kl_loss)
  std::vector<std::pair<std::string, double>> validation;  // val_*, when this step validated
  std::vector<std::pair<std::string, double>> evaluation;  // fid, kid_mean ..., when this step evaluated
  int64_t mem_peak_bytes = 0;
  int64_t memory_capacity = 0;  // the GPU's bytes; 0 on the CPU
  double data_wait_frac = 0, comm_frac = 0;
};

class Progress {
 public:
  explicit Progress(const Config& config);

  int64_t total_steps() const { return total_steps_; }
  int64_t rung_steps(int rung) const { return rung_steps_.at(rung); }
  std::string line(const ProgressPoint& point) const;

  static std::string duration(double seconds);  // "42s", "3m05s", "2h07m", "3d04h"

 private:
  const Config& config_;
  std::vector<int64_t> rung_steps_;
  int64_t total_steps_ = 0;
};

}  // namespace ladder
