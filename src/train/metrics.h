// Why this file exists: metrics.jsonl, one JSON object per logged step (BRIEF §5). Numbers
// are printed with enough digits to round-trip, so equal runs give equal bytes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace ladder {

struct StepMetrics {
  int64_t step = 0;
  int stage = 0;
  int resolution = 0;
  int64_t images_seen = 0;
  double loss = 0;
  std::vector<std::pair<std::string, double>> loss_terms;  // after `loss` (stage 1: rec_loss, kl_loss)
  std::vector<std::pair<std::string, double>> validation;  // val_*, on the steps that validated
  std::vector<std::pair<std::string, double>> evaluation;  // fid, kid_mean, kid_std, eval_count, eval_seconds
  std::vector<std::pair<std::string, std::string>> evaluation_labels;  // eval_mode, eval_network
  double lr = 0, grad_norm = 0;
  double img_per_s = 0, data_wait_frac = 0;
  double comm_frac = 0;  // share of the interval spent in gradient/parameter collectives
  int64_t mem_peak_bytes = 0;
  int64_t skipped_steps = 0;
  double time_s = 0;
  int world = 1;
  int zero_stage = 0;
  int micro_batch = 0;
  int accumulation = 0;
};

class MetricsWriter {
 public:
  // Appends to `path` (a resumed run continues the same file).
  explicit MetricsWriter(const std::string& path);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void write(const StepMetrics& metrics);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

std::string to_json(const StepMetrics& metrics);
// Every field as (name, value), in the JSON's order (TensorBoard scalars).
std::vector<std::pair<std::string, double>> metric_values(const StepMetrics& metrics);

// A resume from step S: rewrites `path` (atomically) without the lines of steps after S, so
// that steps only increase. A missing file is left missing.
void keep_metrics_through(const std::string& path, int64_t step);

}  // namespace ladder
