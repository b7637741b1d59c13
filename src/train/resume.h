// Why this file exists: starting from a checkpoint. `--resume auto|PATH` continues a run:
// rank 0 picks the checkpoint (auto: the one `latest` names, else the newest complete one;
// any that does not verify is skipped with a warning naming it) and every rank restores
// from it the flat master weights and the Adam moments of the ranges it now owns, whatever
// the world size and ZeRO stage that wrote it (ranges are global offsets).
// `train.init_from` starts a new run from weights only, matched by name: a checkpoint's, or a
// safetensors file's (`ladder export`, or PyTorch's safetensors.torch.save_file).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "config/config.h"
#include "core/model_buffers.h"
#include "core/params.h"
#include "io/checkpoint_files.h"
#include "train/adamw.h"
#include "train/weight_average.h"

namespace ladder {

struct Checkpoint {
  std::string dir;  // the step directory
  io::Manifest manifest;
};

// `resume` is "auto" or a step directory. Collective: every rank gets the same answer.
// auto with no usable checkpoint: nullopt (a fresh start). A PATH that does not verify
// throws UsageError naming the file and the fault.
std::optional<Checkpoint> choose_checkpoint(const std::string& resume,
                                            const io::CheckpointDirectory& directory,
                                            Communicator& comm);

// Throws UsageError (one line) when the checkpoint holds another model: the model keys that
// differ, or up to 10 parameter names and shapes that do not match.
void check_same_model(const Checkpoint& checkpoint, const Config& config, const ParamStore& params);

// "train.lr 0.002 -> 0.001", "world 2 -> 3", ... for every setting that differs now.
std::vector<std::string> changes_since(const io::Manifest& manifest, const Config& config, int world);

// Restores the master weights into params.values() (every rank holds them all) and the
// moments into the optimizer's owned ranges.
void load_master(const Checkpoint& checkpoint, ParamStore& params);
void load_moments(const Checkpoint& checkpoint, Optimizer& optimizer);
// The moving average of `ranges` (this rank's owned ranges) into `average`; false when the
// checkpoint holds none (it was written with ema.decay = 0).
bool load_average(const Checkpoint& checkpoint, const std::vector<Range>& ranges, WeightAverage& average);

// The checkpoint's buffers (BatchNorm's running statistics) for a model whose own are `ours`,
// which they must match in names, types and shapes (UsageError naming the checkpoint and the
// first that differs). Empty when the checkpoint holds none (written before ladder kept
// them, which the caller says: the model's stay at their reset values).
std::vector<ModelBuffer> saved_buffers(const Checkpoint& checkpoint, const std::vector<ModelBuffer>& ours);

// Weights from `path` into params.values(), matched by name: a checkpoint directory (its
// master weights) or a safetensors file (MONAI names, PyTorch layouts; BF16/F16/F64 converted
// to fp32). Names and shapes must match exactly (one UsageError listing up to 10 mismatches:
// missing, unexpected, wrong shape, unsupported dtype). train.init_from, reconstruct.
// array = "ema": a checkpoint's moving average instead (sample --ema); UsageError when the
// checkpoint holds none, or for a safetensors file.
void warm_start(const std::string& path, ParamStore& params, const std::string& array = "master");

// The buffers that train.init_from = `path` gives a model whose own are `ours`: a
// checkpoint's, when both it and the model have them (a discriminator on both sides, whose
// parameters warm_start loaded: they match, or warm_start refused); else none.
std::vector<ModelBuffer> warm_start_buffers(const std::string& path, const std::vector<ModelBuffer>& ours);

// The model and diffusion keys that `path` was trained with, as "--model.key value" flags
// (the diffusion keys say what a UNet predicts and on which schedule): a checkpoint's
// manifest, or the "config" entry of a safetensors file's __metadata__ (ladder's exports);
// empty for a file that does not say (PyTorch's own).
std::vector<std::string> model_flags_of(const std::string& path);

}  // namespace ladder
