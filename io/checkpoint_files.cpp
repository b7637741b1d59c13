// Why this file exists: writing, committing, verifying and reading checkpoint files.
#include "io/checkpoint_files.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdlib>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/check.h"
#include "io/hdf5.h"

namespace fs = std::filesystem;

namespace ladder::io {
namespace {

constexpr const char* kShardFormat = "ladder-checkpoint-shard";
constexpr const char* kArrays[] = {"master", "exp_avg", "exp_avg_sq", "ema"};  // ema: optional

void write_array(hid_t file, const char* name, hid_t file_type, hid_t memory_type, int rank,
                 const hsize_t* dims, const void* data, const std::string& path) {
  h5::Dataspace space(h5::check(H5Screate_simple(rank, dims, nullptr), path, name));
  // No modification times: the same state gives the same bytes (and the same XXH3-64).
  h5::PropList create(h5::check(H5Pcreate(H5P_DATASET_CREATE), path, name));
  h5::check(H5Pset_obj_track_times(create.get(), false), path, name);
  h5::Dataset dataset(h5::check(H5Dcreate2(file, name, file_type, space.get(), H5P_DEFAULT,
                                           create.get(), H5P_DEFAULT),
                                path, "cannot create ", name));
  h5::check(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path,
            "cannot write ", name);
}

void write_text_durably(const std::string& path, const std::string& text) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  LADDER_CHECK(file != nullptr, "cannot create ", path, ": ", std::strerror(errno));
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size() &&
                       std::fflush(file) == 0 && ::fsync(fileno(file)) == 0;
  const int saved = errno;
  std::fclose(file);
  if (!written) LADDER_FAIL("cannot write ", path, ": ", std::strerror(saved));
}

// "step-" and at least 8 digits; a number beyond int64 is no step of ours (not an error).
bool parse_step_name(const std::string& name, int64_t* step) {
  if (name.size() < 13 || name.rfind("step-", 0) != 0) return false;
  for (size_t i = 5; i < name.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  const char* end = name.data() + name.size();
  const auto [last, error] = std::from_chars(name.data() + 5, end, *step);
  return error == std::errc() && last == end;
}

// The shards of one checkpoint, opened on first use.
class ShardFiles {
 public:
  ShardFiles(const std::string& step_dir, const Manifest& manifest)
      : dir_(step_dir), manifest_(manifest), files_(manifest.shards.size()) {}

  hid_t dataset(int shard, const std::string& array) {
    Open& open = files_[static_cast<size_t>(shard)];
    const std::string path = (fs::path(dir_) / manifest_.shards[shard].file).string();
    if (!open.file.valid()) open.file = h5::open_file(path);
    auto found = std::find(std::begin(kArrays), std::end(kArrays), array);
    LADDER_CHECK(found != std::end(kArrays), "no checkpoint array ", array);
    h5::Dataset& dataset = open.arrays[found - std::begin(kArrays)];
    if (!dataset.valid()) {
      if (!h5::is_dataset(open.file.get(), array))
        throw UsageError(detail::concat(path, ": no dataset /", array));
      dataset = h5::Dataset(h5::check(H5Dopen2(open.file.get(), array.c_str(), H5P_DEFAULT), path,
                                      "cannot open /", array));
      const std::vector<hsize_t> dims = h5::shape(dataset.get());
      const int64_t expected = total_size(manifest_.shards[shard].ranges);
      if (dims.size() != 1 || static_cast<int64_t>(dims[0]) != expected)
        throw UsageError(detail::concat(path, ": /", array, " has shape ", h5::describe_shape(dims),
                                        ", expected (", expected, ")"));
    }
    return dataset.get();
  }
  std::string path(int shard) const { return (fs::path(dir_) / manifest_.shards[shard].file).string(); }

 private:
  struct Open {
    h5::File file;
    h5::Dataset arrays[4];
  };
  std::string dir_;
  const Manifest& manifest_;
  std::vector<Open> files_;
};

// Checks a shard's /ranges against the manifest and that every array has the right length.
void verify_shard_structure(ShardFiles& files, int shard, const Manifest& manifest) {
  const std::string path = files.path(shard);
  const std::vector<Range>& expected = manifest.shards[shard].ranges;
  h5::File file = h5::open_file(path);
  std::string format;
  if (!h5::read_string_attribute(file.get(), "format", &format, path) || format != kShardFormat)
    throw UsageError(path + ": not a ladder checkpoint shard (format attribute)");
  if (!h5::is_dataset(file.get(), "ranges")) throw UsageError(path + ": no dataset /ranges");
  h5::Dataset ranges(h5::check(H5Dopen2(file.get(), "ranges", H5P_DEFAULT), path, "/ranges"));
  const std::vector<hsize_t> dims = h5::shape(ranges.get());
  if (dims.size() != 2 || dims[1] != 2 || dims[0] != expected.size())
    throw UsageError(detail::concat(path, ": /ranges has shape ", h5::describe_shape(dims),
                                    ", the manifest lists ", expected.size(), " ranges"));
  std::vector<int64_t> values(expected.size() * 2);
  if (!values.empty())
    h5::check(H5Dread(ranges.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
              path, "cannot read /ranges");
  for (size_t i = 0; i < expected.size(); ++i)
    if (values[2 * i] != expected[i].begin || values[2 * i + 1] != expected[i].end)
      throw UsageError(detail::concat(path, ": range ", i, " differs from the manifest"));
  for (const char* array : kArrays)
    if (std::string(array) != "ema" || has_ema(manifest)) files.dataset(shard, array);
}

}  // namespace

bool has_ema(const Manifest& manifest) {
  const auto decay = manifest.config.find("ema.decay");
  return decay != manifest.config.end() && std::atof(decay->second.c_str()) > 0;
}

WrittenFile write_shard_file(const std::string& path, int rank, int world, int64_t step,
                             const std::vector<Range>& ranges, const ShardArrays& arrays) {
  {
    h5::File file = h5::create_file(path, /*reproducible=*/true);
    const hid_t root = file.get();
    h5::write_string_attribute(root, "format", kShardFormat, path);
    h5::write_int_attribute(root, "version", 1, path);
    h5::write_int_attribute(root, "rank", rank, path);
    h5::write_int_attribute(root, "world", world, path);
    h5::write_int_attribute(root, "step", step, path);
    std::vector<int64_t> pairs;
    for (const Range& range : ranges) pairs.insert(pairs.end(), {range.begin, range.end});
    const hsize_t range_dims[2] = {ranges.size(), 2};
    write_array(root, "ranges", H5T_STD_I64LE, H5T_NATIVE_INT64, 2, range_dims, pairs.data(), path);
    const hsize_t count = static_cast<hsize_t>(total_size(ranges));
    const float* data[] = {arrays.master, arrays.exp_avg, arrays.exp_avg_sq, arrays.ema};
    for (int a = 0; a < 4; ++a)
      if (data[a] != nullptr)
        write_array(root, kArrays[a], H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &count, data[a], path);
    LADDER_CHECK(file.close(), "cannot close ", path, " (HDF5: ", h5::last_error(), ")");
  }
  fsync_path(path);
  return hash_file(path);
}

WrittenFile hash_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw UsageError(detail::concat(path, ": cannot open (", std::strerror(errno), ")"));
  std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> state(XXH3_createState(),
                                                                       &XXH3_freeState);
  LADDER_CHECK(state && XXH3_64bits_reset(state.get()) == XXH_OK, "XXH3 state");
  std::vector<char> block(size_t{8} << 20);
  WrittenFile result;
  size_t got;
  while ((got = std::fread(block.data(), 1, block.size(), file.get())) > 0) {
    XXH3_64bits_update(state.get(), block.data(), got);
    result.bytes += static_cast<int64_t>(got);
  }
  if (std::ferror(file.get())) throw UsageError(path + ": read error");
  result.xxh3 = XXH3_64bits_digest(state.get());
  return result;
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  LADDER_CHECK(fd >= 0, "cannot open ", path, " to fsync: ", std::strerror(errno));
  const int status = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  // Some filesystems refuse fsync on directories (EINVAL); the rename is as durable as they get.
  LADDER_CHECK(status == 0 || saved == EINVAL, "fsync ", path, ": ", std::strerror(saved));
}

CheckpointDirectory::CheckpointDirectory(std::string run_dir)
    : path_((fs::path(run_dir) / "checkpoints").string()) {}

std::string CheckpointDirectory::step_path(int64_t step) const {
  return (fs::path(path_) / step_directory_name(step)).string();
}

std::string CheckpointDirectory::temporary_path(int64_t step) const {
  return (fs::path(path_) / (".tmp-" + step_directory_name(step))).string();
}

std::vector<int64_t> CheckpointDirectory::complete_steps() const {
  std::vector<int64_t> steps;
  std::error_code error;
  for (int64_t step : all_steps())
    if (fs::is_regular_file(fs::path(step_path(step)) / kManifestFile, error)) steps.push_back(step);
  return steps;
}

std::vector<int64_t> CheckpointDirectory::all_steps() const {
  std::vector<int64_t> steps;
  std::error_code error;
  if (!fs::is_directory(path_, error)) return steps;
  for (const fs::directory_entry& entry : fs::directory_iterator(path_, error)) {
    int64_t step;
    if (parse_step_name(entry.path().filename().string(), &step) && entry.is_directory(error))
      steps.push_back(step);
  }
  std::sort(steps.rbegin(), steps.rend());
  return steps;
}

int64_t CheckpointDirectory::latest_step() const {
  std::FILE* file = std::fopen((fs::path(path_) / kLatestFile).c_str(), "rb");
  if (file == nullptr) return -1;
  char text[64] = {};
  const size_t got = std::fread(text, 1, sizeof text - 1, file);
  std::fclose(file);
  std::string name(text, got);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  int64_t step;
  return parse_step_name(name, &step) ? step : -1;
}

void CheckpointDirectory::commit(const Manifest& manifest, int keep) const {
  const std::string temporary = temporary_path(manifest.step);
  const std::string final_path = step_path(manifest.step);
  write_text_durably((fs::path(temporary) / kManifestFile).string(), manifest_to_json(manifest));
  fsync_path(temporary);
  if (fs::exists(final_path)) {  // a damaged directory under this name: kept aside, never loaded
    std::string aside = final_path + ".replaced";
    for (int n = 1; fs::exists(aside); ++n) aside = final_path + ".replaced-" + std::to_string(n);
    fs::rename(final_path, aside);
  }
  fs::rename(temporary, final_path);
  fsync_path(path_);
  const std::string latest = (fs::path(path_) / kLatestFile).string();
  write_text_durably(latest + ".tmp", step_directory_name(manifest.step) + "\n");
  fs::rename(latest + ".tmp", latest);
  fsync_path(path_);
  const std::vector<int64_t> steps = complete_steps();
  for (size_t i = static_cast<size_t>(keep); i < steps.size(); ++i)
    if (steps[i] < manifest.step) fs::remove_all(step_path(steps[i]));
}

void CheckpointDirectory::remove_temporaries() const {
  std::error_code error;
  if (!fs::is_directory(path_, error)) return;
  std::vector<fs::path> stale;
  for (const fs::directory_entry& entry : fs::directory_iterator(path_, error))
    if (entry.path().filename().string().rfind(".tmp-", 0) == 0) stale.push_back(entry.path());
  for (const fs::path& path : stale) fs::remove_all(path);
  std::error_code ignored;
  fs::remove(fs::path(path_) / (std::string(kLatestFile) + ".tmp"), ignored);
}

std::vector<std::string> CheckpointDirectory::supersede_after(int64_t step) const {
  std::vector<std::string> moved;
  for (int64_t later : complete_steps()) {
    if (later <= step) continue;
    std::string target = step_path(later) + ".superseded";
    for (int n = 1; fs::exists(target); ++n) target = step_path(later) + ".superseded-" + std::to_string(n);
    fs::rename(step_path(later), target);
    moved.push_back(fs::path(target).filename().string());
  }
  if (!moved.empty()) fsync_path(path_);
  return moved;
}

Manifest verify_checkpoint(const std::string& step_dir) {
  std::error_code error;
  if (!fs::is_directory(step_dir, error)) throw UsageError(step_dir + ": not a checkpoint directory");
  Manifest manifest = read_manifest((fs::path(step_dir) / kManifestFile).string());
  ShardFiles files(step_dir, manifest);
  for (int shard = 0; shard < static_cast<int>(manifest.shards.size()); ++shard) {
    const ShardRecord& record = manifest.shards[shard];
    const std::string path = files.path(shard);
    if (!fs::is_regular_file(path, error)) throw UsageError(path + ": missing shard");
    const int64_t size = static_cast<int64_t>(fs::file_size(path, error));
    if (size != record.bytes)
      throw UsageError(detail::concat(path, ": ", size, " bytes, the manifest says ", record.bytes,
                                      " (truncated or replaced shard)"));
    if (hash_file(path).xxh3 != record.xxh3)
      throw UsageError(path + ": XXH3-64 checksum mismatch (corrupt shard)");
    verify_shard_structure(files, shard, manifest);
  }
  return manifest;
}

void read_checkpoint_ranges(const std::string& step_dir, const Manifest& manifest,
                            const std::string& array, const std::vector<Range>& ranges, float* dst) {
  ShardFiles files(step_dir, manifest);
  int64_t out = 0;  // position in dst
  for (const Range& wanted : ranges) {
    // Padding beyond the real parameters: zeros whatever the writer's padding was.
    const int64_t real_end = std::min(wanted.end, std::max(wanted.begin, manifest.count));
    std::fill(dst + out + (real_end - wanted.begin), dst + out + wanted.size(), 0.0f);
    for (int shard = 0; shard < static_cast<int>(manifest.shards.size()); ++shard) {
      int64_t in_shard = 0;  // position in the shard's concatenated arrays
      for (const Range& held : manifest.shards[shard].ranges) {
        const int64_t lo = std::max(wanted.begin, held.begin);
        const int64_t hi = std::min(real_end, held.end);
        if (lo < hi) {
          const hid_t dataset = files.dataset(shard, array);
          const std::string path = files.path(shard);
          h5::Dataspace file_space(h5::check(H5Dget_space(dataset), path, array));
          const hsize_t start = static_cast<hsize_t>(in_shard + lo - held.begin);
          const hsize_t count = static_cast<hsize_t>(hi - lo);
          h5::check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, nullptr, &count,
                                        nullptr),
                    path, "selecting /", array);
          h5::Dataspace memory_space(h5::check(H5Screate_simple(1, &count, nullptr), path, array));
          h5::check(H5Dread(dataset, H5T_NATIVE_FLOAT, memory_space.get(), file_space.get(),
                            H5P_DEFAULT, dst + out + (lo - wanted.begin)),
                    path, "cannot read /", array, " (truncated or damaged shard)");
        }
        in_shard += held.size();
      }
    }
    out += wanted.size();
  }
}

}  // namespace ladder::io
