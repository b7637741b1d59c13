// Why this file exists: the manifest of a checkpoint (BRIEF §5 "Checkpoint"), the file that
// makes a step directory complete. Rank 0 writes it last, after every rank's shard is on
// disk; it holds the training state a resume restores (step, rung, position in the rung,
// images seen, optimizer steps, loss-scale state, skipped steps, data cursor), the parameter
// table, the model's buffers (BatchNorm's running statistics), each shard's global ranges,
// size and XXH3-64, and the resolved config. It carries an XXH3-64 of its own canonical JSON,
// so an edited manifest is refused like a damaged one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/model_buffers.h"
#include "train/loss_scaler.h"
#include "train/shard_layout.h"

namespace ladder::io {

// Where training stands after the checkpoint's optimizer step.
struct TrainingState {
  int64_t step = 0;             // optimizer steps done in the whole run
  int64_t images_seen = 0;      // global images trained on in the whole run
  int rung = 0;                 // the rung that step belongs to
  int64_t rung_step = 0;        // optimizer steps done in that rung (== its steps: rung done)
  int64_t optimizer_steps = 0;  // AdamW's step count (bias correction; reset by rungs)
  LossScalerState scaler;       // fp16 loss scale; `skipped` is the run's skipped steps
  // Data cursor: the global batches of the rung's data order (data/data_order.h) trained on,
  // the same on every world size; -1 in manifests written before that order (the rung's step
  // stands in for it).
  int64_t data_batch = -1;
  // Stage 1 with a discriminator (its optimizer group, train/optimizer_groups.h): its AdamW
  // step count and loss scaler; -1 without one.
  int64_t discriminator_steps = -1;
  LossScalerState discriminator_scaler;
};

struct ShardRecord {
  int rank = 0;
  std::string file;           // shard-RRRRR-of-WWWWW.h5, relative to the step directory
  std::vector<Range> ranges;  // global flat-buffer offsets held, in order
  int64_t bytes = 0;          // file size
  uint64_t xxh3 = 0;          // XXH3-64 of the whole file
};

struct ParamRecord {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0, numel = 0;
};

struct Manifest {
  int64_t step = 0;  // == state.step
  int world = 1;
  int zero_stage = 0;
  int64_t count = 0;         // real parameters
  int64_t padded_count = 0;  // the writer's flat-buffer length
  TrainingState state;
  std::vector<ParamRecord> params;
  // The model's buffers (BatchNorm's running statistics) as rank 0 held them; a checkpoint of
  // a model without any, or written before ladder kept them, has none.
  std::vector<ModelBuffer> buffers;
  std::vector<ShardRecord> shards;  // one per rank, rank order
  std::map<std::string, std::string> config;  // resolved config, key → value text
  std::string ladder_version;
};

// Serialises (with the self-checksum) / parses and validates. parse_manifest throws
// UsageError("<path>: <fault>") for invalid JSON, a missing or ill-typed field, a checksum
// that does not match the content (an edited manifest), or inconsistent shards and ranges.
std::string manifest_to_json(const Manifest& manifest);
Manifest parse_manifest(const std::string& text, const std::string& path);
Manifest read_manifest(const std::string& path);  // the file; UsageError when missing

// File names inside run.dir/checkpoints and a step directory.
std::string step_directory_name(int64_t step);           // step-00000042
std::string shard_file_name(int rank, int world);        // shard-00000-of-00002.h5
constexpr const char* kManifestFile = "manifest.json";
constexpr const char* kLatestFile = "latest";

}  // namespace ladder::io
