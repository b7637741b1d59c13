// Why this file exists: choosing, checking and loading the checkpoint a run starts from.
#include "train/resume.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/log.h"
#include "model/autoencoder_critics.h"
#include "model/torch_layout.h"

namespace fs = std::filesystem;

namespace ladder {
namespace {

// The config keys that decide the parameter table: a checkpoint must agree on all of them.
const char* kModelShapeKeys[] = {"model.kind",          "model.in_channels",    "model.channels",
                                 "model.res_blocks",    "model.attention_levels",
                                 "model.mid_attention", "model.latent_channels", "model.norm_groups"};

std::string describe(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + ")";
}

// Parameters present on one side only or with other shapes, at most 10 described.
// optional_prefix (when not empty): parameters so named may be absent on either side.
std::string parameter_mismatches(const io::Manifest& manifest, const ParamStore& params,
                                 const std::string& optional_prefix = "") {
  auto optional = [&](const std::string& name) { return !optional_prefix.empty() && name.rfind(optional_prefix, 0) == 0; };
  std::set<std::string> ours;
  for (const ParamEntry& entry : params.entries()) ours.insert(entry.name);
  std::map<std::string, const io::ParamRecord*> saved;
  for (const io::ParamRecord& record : manifest.params)
    if (!optional(record.name) || ours.count(record.name) > 0) saved[record.name] = &record;
  std::vector<std::string> faults;
  for (const ParamEntry& entry : params.entries()) {
    auto found = saved.find(entry.name);
    if (found == saved.end()) {
      if (!optional(entry.name)) faults.push_back("missing " + entry.name);
      continue;
    }
    if (found->second->shape != entry.shape)
      faults.push_back(entry.name + " has shape " + describe(found->second->shape) + ", expected " +
                       describe(entry.shape));
    saved.erase(found);
  }
  for (const auto& [name, record] : saved) faults.push_back("unexpected " + name);
  std::string text;
  for (size_t i = 0; i < faults.size() && i < 10; ++i) text += (i ? "; " : "") + faults[i];
  if (faults.size() > 10) text += detail::concat("; and ", faults.size() - 10, " more");
  return text;
}

}  // namespace

std::optional<Checkpoint> choose_checkpoint(const std::string& resume,
                                            const io::CheckpointDirectory& directory,
                                            Communicator& comm) {
  // Rank 0 verifies every byte; the others learn the outcome: a step (auto), 0 (PATH), -1
  // (none) or -2 (rank 0 refused PATH, and throws with the reason).
  double choice = -1;
  std::optional<Checkpoint> chosen;
  if (comm.rank() == 0) {
    if (resume != "auto") {
      try {
        chosen = Checkpoint{resume, io::verify_checkpoint(resume)};
        choice = 0;
      } catch (const UsageError&) {
        choice = -2;
        comm.broadcast(&choice, 1, DType::kF64, 0);
        throw;
      }
    } else {
      std::vector<int64_t> candidates = directory.complete_steps();
      const int64_t latest = directory.latest_step();
      if (latest >= 0) {  // what `latest` names first (it is normally the newest anyway)
        candidates.erase(std::remove(candidates.begin(), candidates.end(), latest), candidates.end());
        candidates.insert(candidates.begin(), latest);
      }
      for (int64_t step : candidates) {
        const std::string dir = directory.step_path(step);
        try {
          chosen = Checkpoint{dir, io::verify_checkpoint(dir)};
          choice = static_cast<double>(step);
          break;
        } catch (const Error& e) {
          log_warning("resume: skipping checkpoint ", dir, ": ", e.what());
        }
      }
    }
  }
  comm.broadcast(&choice, 1, DType::kF64, 0);
  if (choice == -2) throw UsageError(detail::concat("rank 0 refused the checkpoint ", resume));
  if (choice == -1 || comm.rank() == 0) return chosen;
  const std::string dir = resume != "auto" ? resume : directory.step_path(static_cast<int64_t>(choice));
  return Checkpoint{dir, io::read_manifest((fs::path(dir) / io::kManifestFile).string())};
}

void check_same_model(const Checkpoint& checkpoint, const Config& config, const ParamStore& params) {
  std::map<std::string, std::string> now;
  for (const auto& [key, value] : config.key_values()) now[key] = value;
  std::string differing;
  for (const char* key : kModelShapeKeys) {
    auto saved = checkpoint.manifest.config.find(key);
    const std::string was = saved == checkpoint.manifest.config.end() ? "(absent)" : saved->second;
    if (was != now[key])
      differing += detail::concat(differing.empty() ? "" : "; ", key, " = ", was,
                                  " in the checkpoint, ", now[key], " now");
  }
  if (!differing.empty())
    throw UsageError(detail::concat(checkpoint.dir, ": a checkpoint of another model (", differing, ")"));
  const std::string mismatches = parameter_mismatches(checkpoint.manifest, params);
  if (!mismatches.empty())
    throw UsageError(detail::concat(checkpoint.dir, ": parameters do not match (", mismatches, ")"));
  for (size_t i = 0; i < params.entries().size(); ++i)
    LADDER_CHECK_USAGE(checkpoint.manifest.params[i].offset == params.entries()[i].offset,
                       checkpoint.dir, ": parameter ", params.entries()[i].name,
                       " sits at another flat offset");
}

std::vector<std::string> changes_since(const io::Manifest& manifest, const Config& config, int world) {
  std::vector<std::string> changes;
  for (const auto& [key, value] : config.key_values()) {
    auto saved = manifest.config.find(key);
    const std::string was = saved == manifest.config.end() ? "(absent)" : saved->second;
    if (was != value) changes.push_back(key + " " + was + " -> " + value);
  }
  if (manifest.world != world) changes.push_back(detail::concat("world ", manifest.world, " -> ", world));
  return changes;
}

void load_master(const Checkpoint& checkpoint, ParamStore& params) {
  io::read_checkpoint_ranges(checkpoint.dir, checkpoint.manifest, "master",
                             {Range{0, params.padded_count()}}, params.values());
}

void load_moments(const Checkpoint& checkpoint, Optimizer& optimizer) {
  const std::vector<Range>& ranges = optimizer.owned_ranges();
  HostBuffer<float> exp_avg(total_size(ranges)), exp_avg_sq(total_size(ranges));
  io::read_checkpoint_ranges(checkpoint.dir, checkpoint.manifest, "exp_avg", ranges, exp_avg.data());
  io::read_checkpoint_ranges(checkpoint.dir, checkpoint.manifest, "exp_avg_sq", ranges,
                             exp_avg_sq.data());
  optimizer.upload_moments(ranges, exp_avg.data(), exp_avg_sq.data());
}

bool load_average(const Checkpoint& checkpoint, const std::vector<Range>& ranges, WeightAverage& average) {
  if (!io::has_ema(checkpoint.manifest)) return false;
  HostBuffer<float> values(total_size(ranges));
  io::read_checkpoint_ranges(checkpoint.dir, checkpoint.manifest, "ema", ranges, values.data());
  average.upload(values.data());
  return true;
}

std::vector<ModelBuffer> saved_buffers(const Checkpoint& checkpoint, const std::vector<ModelBuffer>& ours) {
  const std::vector<ModelBuffer>& saved = checkpoint.manifest.buffers;
  if (saved.empty()) return {};
  for (size_t i = 0; i < std::max(saved.size(), ours.size()); ++i) {
    if (i >= saved.size())
      throw UsageError(detail::concat(checkpoint.dir, ": buffers do not match (missing ", ours[i].name, ")"));
    if (i >= ours.size())
      throw UsageError(detail::concat(checkpoint.dir, ": buffers do not match (unexpected ", saved[i].name, ")"));
    if (saved[i].name != ours[i].name || saved[i].type != ours[i].type || saved[i].shape != ours[i].shape)
      throw UsageError(detail::concat(checkpoint.dir, ": buffers do not match (", saved[i].name, " ",
                                      type_name(saved[i].type), " ", describe(saved[i].shape), ", expected ",
                                      ours[i].name, " ", type_name(ours[i].type), " ", describe(ours[i].shape), ")"));
  }
  return saved;
}

void warm_start(const std::string& path, ParamStore& params, const std::string& array) {
  std::error_code error;
  LADDER_CHECK_USAGE(fs::exists(path, error), path, ": no such file or directory");
  if (fs::is_regular_file(path, error)) {
    LADDER_CHECK_USAGE(array == "master", path, ": a safetensors file holds one set of weights; for the "
                       "moving average export it with ladder export --ema");
    load_torch_weights(io::read_safetensors_header(path), params, kDiscriminatorPrefix);
    return;
  }
  const Checkpoint checkpoint{path, io::verify_checkpoint(path)};
  LADDER_CHECK_USAGE(array == "master" || io::has_ema(checkpoint.manifest), path,
                     ": the checkpoint holds no moving average of the weights (trained with ema.decay = 0)");
  // A discriminator may be on either side only: weights of an autoencoder trained with or
  // without the adversarial loss start one trained either way (a new one starts fresh).
  const std::string mismatches = parameter_mismatches(checkpoint.manifest, params, kDiscriminatorPrefix);
  if (!mismatches.empty())
    throw UsageError(detail::concat("train.init_from = ", path, ": parameters do not match (",
                                    mismatches, ")"));
  // Each parameter from wherever the checkpoint holds it, into our own order (read in runs of
  // parameters contiguous on both sides).
  std::map<std::string, int64_t> saved_offset;
  for (const io::ParamRecord& record : checkpoint.manifest.params) saved_offset[record.name] = record.offset;
  std::vector<Range> ranges;
  std::vector<const ParamEntry*> loaded;
  for (const ParamEntry& entry : params.entries()) {
    const auto found = saved_offset.find(entry.name);
    if (found == saved_offset.end()) continue;  // a discriminator the checkpoint has not
    ranges.push_back({found->second, found->second + entry.numel});
    loaded.push_back(&entry);
  }
  std::vector<float> values(static_cast<size_t>(params.count()));
  io::read_checkpoint_ranges(checkpoint.dir, checkpoint.manifest, array, ranges, values.data());
  int64_t at = 0;
  for (const ParamEntry* entry : loaded) {
    std::copy_n(values.data() + at, entry->numel, params.values() + entry->offset);
    at += entry->numel;
  }
}

std::vector<ModelBuffer> warm_start_buffers(const std::string& path, const std::vector<ModelBuffer>& ours) {
  std::error_code error;
  if (ours.empty() || !fs::is_directory(path, error)) return {};  // a safetensors file holds no discriminator
  const Checkpoint checkpoint{path, io::read_manifest((fs::path(path) / io::kManifestFile).string())};
  return saved_buffers(checkpoint, ours);
}

std::vector<std::string> model_flags_of(const std::string& path) {
  std::map<std::string, std::string> keys;
  std::error_code error;
  LADDER_CHECK_USAGE(fs::exists(path, error), path, ": no such file or directory");
  if (fs::is_regular_file(path, error)) {
    const io::SafetensorsHeader header = io::read_safetensors_header(path);
    auto config = header.metadata.find("config");
    if (config == header.metadata.end()) return {};
    const nlohmann::json object = nlohmann::json::parse(config->second, nullptr, false);
    if (!object.is_object()) throw UsageError(path + ": __metadata__.config is not a JSON object");
    for (auto it = object.begin(); it != object.end(); ++it)
      if (it.value().is_string()) keys[it.key()] = it.value().get<std::string>();
  } else {
    keys = io::read_manifest((fs::path(path) / io::kManifestFile).string()).config;
  }
  std::vector<std::string> flags;
  for (const auto& [key, value] : keys)
    // The model's keys, and how its input images were made (data.intensity): what it expects.
    if (key.rfind("model.", 0) == 0 || key.rfind("diffusion.", 0) == 0 || key == "data.intensity")
      flags.insert(flags.end(), {"--" + key, value});
  return flags;
}

}  // namespace ladder
