// Why this file exists: the files of a sharded checkpoint and the rules that make it safe
// (BRIEF §5 "Checkpoint"). Layout under run.dir/checkpoints/:
//   step-NNNNNNNN/shard-RRRRR-of-WWWWW.h5   rank R's owned ranges of the flat buffer:
//                                           /ranges int64 (K, 2) global [begin, end),
//                                           /master, /exp_avg, /exp_avg_sq float32 (Σ sizes),
//                                           /ema float32 (Σ sizes) when the run has ema.decay
//   step-NNNNNNNN/manifest.json             written last, by rank 0 (io/checkpoint_manifest.h)
//   latest                                  "step-NNNNNNNN\n", replaced atomically
//   .tmp-step-NNNNNNNN/                     a checkpoint being written (never loaded)
// Commit: every shard is written and fsynced in the temporary directory, then the manifest;
// the directory is fsynced and renamed to its final name, the parent fsynced, and `latest`
// replaced by rename. A process killed at any moment leaves the previous checkpoints as they
// were and at most a temporary directory, which the next run removes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/checkpoint_manifest.h"

namespace ladder::io {

// The flat arrays of a shard, each (Σ range sizes), concatenated in range order; ema null
// when the run keeps no moving average.
struct ShardArrays {
  const float* master = nullptr;
  const float* exp_avg = nullptr;
  const float* exp_avg_sq = nullptr;
  const float* ema = nullptr;
};

// Whether the checkpoint's shards hold /ema (its config has ema.decay > 0).
bool has_ema(const Manifest& manifest);

// Writes `path` (a shard file), fsyncs it and returns its size and XXH3-64 (of the bytes on
// disk, read back). Throws Error naming the file on any failure.
struct WrittenFile {
  int64_t bytes = 0;
  uint64_t xxh3 = 0;
};
WrittenFile write_shard_file(const std::string& path, int rank, int world, int64_t step,
                             const std::vector<Range>& ranges, const ShardArrays& arrays);

// XXH3-64 and size of a whole file (streamed).
WrittenFile hash_file(const std::string& path);

// fsync of a file or a directory (so a rename inside it is durable); throws on failure.
void fsync_path(const std::string& path);

// run.dir/checkpoints and the paths inside it.
class CheckpointDirectory {
 public:
  explicit CheckpointDirectory(std::string run_dir);

  const std::string& path() const { return path_; }
  std::string step_path(int64_t step) const;
  std::string temporary_path(int64_t step) const;

  // Step numbers of the directories named step-NNNNNNNN that hold a manifest, newest first
  // (unverified: verify_checkpoint() says whether one loads).
  std::vector<int64_t> complete_steps() const;
  // Step numbers of every step-NNNNNNNN directory, complete or not, newest first (a step
  // directory without a manifest is damage: commits rename only complete ones into place).
  std::vector<int64_t> all_steps() const;
  // The step `latest` names, or -1 when it is missing or unreadable.
  int64_t latest_step() const;

  // Rank 0, after every shard of `step` is in temporary_path(step): writes the manifest,
  // fsyncs, renames into place (a directory already under that name, which can only be a
  // damaged one, is renamed step-NNNNNNNN.replaced first), replaces `latest`, then deletes
  // the oldest complete checkpoints beyond `keep`.
  void commit(const Manifest& manifest, int keep) const;
  // Removes .tmp-* directories (checkpoints a killed run left half-written).
  void remove_temporaries() const;
  // Renames complete checkpoints newer than `step` to step-NNNNNNNN.superseded (a resume
  // from an older checkpoint starts a new history; the old one is kept, never loaded).
  // Returns their names.
  std::vector<std::string> supersede_after(int64_t step) const;

 private:
  std::string path_;
};

// Reads and fully verifies the checkpoint in `step_dir`: the manifest (JSON, fields,
// self-checksum) and every shard (present, size, XXH3-64, structure). Throws UsageError with
// one line naming the file and the fault.
Manifest verify_checkpoint(const std::string& step_dir);

// Fills dst (Σ sizes of `ranges`) with `array` ("master", "exp_avg", "exp_avg_sq" or "ema") at the
// global offsets `ranges`, read from whichever shards of the checkpoint hold them. Offsets
// at or beyond the checkpoint's parameter count read as 0 (padding of another world size).
void read_checkpoint_ranges(const std::string& step_dir, const Manifest& manifest,
                            const std::string& array, const std::vector<Range>& ranges, float* dst);

}  // namespace ladder::io
