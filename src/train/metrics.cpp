// Why this file exists: formatting and appending metrics lines.
#include "train/metrics.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/check.h"

namespace ladder {

std::string to_json(const StepMetrics& m) {
  char head[256], tail[640];
  std::snprintf(head, sizeof head,
                "{\"step\": %lld, \"stage\": %d, \"resolution\": %d, \"images_seen\": %lld, \"loss\": %.9g",
                static_cast<long long>(m.step), m.stage, m.resolution, static_cast<long long>(m.images_seen), m.loss);
  std::string line = head;
  std::vector<std::pair<std::string, double>> terms = m.loss_terms;
  terms.insert(terms.end(), m.validation.begin(), m.validation.end());
  for (const auto& [name, value] : terms) {
    char term[128];
    std::snprintf(term, sizeof term, ", \"%s\": %.9g", name.c_str(), value);
    line += term;
  }
  for (const auto& [name, value] : m.evaluation) {  // every digit: scores compare across runs and tools
    char term[128];
    std::snprintf(term, sizeof term, ", \"%s\": %.17g", name.c_str(), value);
    line += term;
  }
  for (const auto& [name, text] : m.evaluation_labels)
    line += ", " + nlohmann::json(name).dump() + ": " + nlohmann::json(text).dump();
  std::snprintf(tail, sizeof tail,
                ", \"lr\": %.9g, \"grad_norm\": %.9g, \"img_per_s\": %.4f, \"data_wait_frac\": %.5f, "
                "\"comm_frac\": %.5f, \"mem_peak_bytes\": %lld, \"skipped_steps\": %lld, \"time_s\": %.3f, "
                "\"world\": %d, \"zero_stage\": %d, \"micro_batch\": %d, \"accumulation\": %d}",
                m.lr, m.grad_norm, m.img_per_s, m.data_wait_frac, m.comm_frac,
                static_cast<long long>(m.mem_peak_bytes), static_cast<long long>(m.skipped_steps), m.time_s,
                m.world, m.zero_stage, m.micro_batch, m.accumulation);
  return line + tail;
}

void keep_metrics_through(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in.good()) return;
  std::string kept, line;
  while (std::getline(in, line)) {
    // A line cut short by a kill is dropped too: it is not valid JSON.
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_object() && record.contains("step") && record["step"].is_number_integer() &&
        record["step"].get<int64_t>() <= step)
      kept += line + "\n";
  }
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << kept;
    out.flush();
    LADDER_CHECK(out.good(), "cannot write ", temporary);
  }
  std::filesystem::rename(temporary, path);
}

std::vector<std::pair<std::string, double>> metric_values(const StepMetrics& m) {
  std::vector<std::pair<std::string, double>> values = {
      {"step", double(m.step)}, {"stage", double(m.stage)}, {"resolution", double(m.resolution)},
      {"images_seen", double(m.images_seen)}, {"loss", m.loss}};
  values.insert(values.end(), m.loss_terms.begin(), m.loss_terms.end());
  values.insert(values.end(), m.validation.begin(), m.validation.end());
  values.insert(values.end(), m.evaluation.begin(), m.evaluation.end());
  const std::vector<std::pair<std::string, double>> rest = {
      {"lr", m.lr},
      {"grad_norm", m.grad_norm},
      {"img_per_s", m.img_per_s},
      {"data_wait_frac", m.data_wait_frac},
      {"comm_frac", m.comm_frac},
      {"mem_peak_bytes", double(m.mem_peak_bytes)},
      {"skipped_steps", double(m.skipped_steps)},
      {"time_s", m.time_s},
      {"world", double(m.world)},
      {"zero_stage", double(m.zero_stage)},
      {"micro_batch", double(m.micro_batch)},
      {"accumulation", double(m.accumulation)}};
  values.insert(values.end(), rest.begin(), rest.end());
  return values;
}

MetricsWriter::MetricsWriter(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "a");
  LADDER_CHECK(file_ != nullptr, "cannot open ", path, ": ", std::strerror(errno));
}

MetricsWriter::~MetricsWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsWriter::write(const StepMetrics& metrics) {
  std::string line = to_json(metrics) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    LADDER_FAIL("cannot write ", path_, ": ", std::strerror(errno));
}

}  // namespace ladder
