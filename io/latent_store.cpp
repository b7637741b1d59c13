// Why this file exists: writing, validating and reading latent stores (see the header).
#include "io/latent_store.h"

#include <xxhash.h>

#include <algorithm>
#include <filesystem>

#include "core/check.h"
#include "io/hdf5.h"

namespace ladder::io {
namespace {

constexpr const char* kFormat = "ladder-latent-store";
constexpr int64_t kVersion = 1;
constexpr const char* kChecksum = "xxh3-64";

std::string level_group(int resolution) { return "/levels/" + std::to_string(resolution); }
std::string checksums_name(int resolution) { return "/checksums/" + std::to_string(resolution); }

h5::Dataset open_dataset(hid_t file, const std::string& name, const std::string& path) {
  if (!h5::is_dataset(file, name)) LADDER_FAIL(path, ": missing ", name);
  return h5::Dataset(h5::check(H5Dopen2(file, name.c_str(), H5P_DEFAULT), path, "cannot open ", name));
}

// Reads images [first, first + count) of a 4-D float dataset into dst (C order).
void read_rows(hid_t dataset, const std::vector<hsize_t>& dims, int64_t first, int64_t count, float* dst,
               const std::string& path, const std::string& what) {
  h5::Dataspace file_space(h5::check(H5Dget_space(dataset), path, what));
  const hsize_t start[4] = {static_cast<hsize_t>(first), 0, 0, 0};
  const hsize_t block[4] = {static_cast<hsize_t>(count), dims[1], dims[2], dims[3]};
  h5::check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, block, nullptr), path, what);
  h5::Dataspace memory(h5::check(H5Screate_simple(4, block, nullptr), path, what));
  h5::check(H5Dread(dataset, H5T_NATIVE_FLOAT, memory.get(), file_space.get(), H5P_DEFAULT, dst), path,
            "cannot read ", what, " (truncated or damaged file)");
}

}  // namespace

uint64_t latent_checksum(const float* mu, const float* logvar, int64_t floats) {
  XXH3_state_t* state = XXH3_createState();
  LADDER_CHECK(state != nullptr && XXH3_64bits_reset(state) == XXH_OK, "XXH3 state");
  XXH3_64bits_update(state, mu, static_cast<size_t>(floats) * sizeof(float));
  XXH3_64bits_update(state, logvar, static_cast<size_t>(floats) * sizeof(float));
  const uint64_t hash = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return hash;
}

// ---- Writer ----------------------------------------------------------------------------

struct LatentStoreWriter::Impl {
  std::string path, tmp;
  LatentStoreInfo info;
  h5::File file;
  std::vector<h5::Dataset> mu, logvar;              // per resolution
  std::vector<std::vector<uint64_t>> checksums;     // per resolution, (N)
  bool finished = false;

  int level(int resolution) const {
    auto found = std::find(info.resolutions.begin(), info.resolutions.end(), resolution);
    LADDER_CHECK(found != info.resolutions.end(), "latent store: no level ", resolution);
    return static_cast<int>(found - info.resolutions.begin());
  }
};

LatentStoreWriter::LatentStoreWriter(const std::string& path, const LatentStoreInfo& info,
                                     const std::vector<std::string>& names)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.path = path;
  s.tmp = path + ".tmp";
  s.info = info;
  LADDER_CHECK(static_cast<int64_t>(names.size()) == info.count, "latent store: ", names.size(), " names for ",
               info.count, " images");
  s.file = h5::create_file(s.tmp);
  const hid_t root = s.file.get();
  h5::write_string_attribute(root, "format", kFormat, s.tmp);
  h5::write_int_attribute(root, "version", kVersion, s.tmp);
  h5::write_int_attribute(root, "latent_channels", info.latent_channels, s.tmp);
  h5::write_int_attribute(root, "downsampling", info.downsampling, s.tmp);
  h5::write_string_attribute(root, "autoencoder", info.autoencoder, s.tmp);
  h5::write_string_attribute(root, "autoencoder_checkpoint", info.autoencoder_checkpoint, s.tmp);
  h5::write_int_attribute(root, "autoencoder_step", info.autoencoder_step, s.tmp);
  h5::write_string_attribute(root, "checksum", kChecksum, s.tmp);
  for (const char* group : {"/levels", "/checksums"})
    h5::Group(h5::check(H5Gcreate2(root, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), s.tmp, group));
  for (int resolution : info.resolutions) {
    LADDER_CHECK(resolution % info.downsampling == 0, "latent store: resolution ", resolution);
    h5::Group(h5::check(H5Gcreate2(root, level_group(resolution).c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                        s.tmp, level_group(resolution)));
    const hsize_t side = static_cast<hsize_t>(resolution / info.downsampling);
    const hsize_t dims[4] = {static_cast<hsize_t>(info.count), side, side, static_cast<hsize_t>(info.latent_channels)};
    const hsize_t chunk[4] = {1, side, side, dims[3]};
    h5::Dataspace space(h5::check(H5Screate_simple(4, dims, nullptr), s.tmp, "latents"));
    h5::PropList create(h5::check(H5Pcreate(H5P_DATASET_CREATE), s.tmp, "latents"));
    h5::check(H5Pset_chunk(create.get(), 4, chunk), s.tmp, "latents");
    for (auto [name, list] : {std::pair{"/mu", &s.mu}, std::pair{"/logvar", &s.logvar}})
      list->push_back(h5::Dataset(h5::check(H5Dcreate2(root, (level_group(resolution) + name).c_str(), H5T_IEEE_F32LE,
                                                       space.get(), H5P_DEFAULT, create.get(), H5P_DEFAULT),
                                            s.tmp, "cannot create ", level_group(resolution), name)));
    s.checksums.emplace_back(static_cast<size_t>(info.count), 0);
  }
  h5::Datatype string_type = h5::vlen_string_type();
  std::vector<const char*> pointers;
  for (const std::string& name : names) pointers.push_back(name.c_str());
  const hsize_t count = static_cast<hsize_t>(names.size());
  h5::Dataspace name_space(h5::check(H5Screate_simple(1, &count, nullptr), s.tmp, "/names"));
  h5::Dataset name_set(h5::check(H5Dcreate2(root, "/names", string_type.get(), name_space.get(), H5P_DEFAULT,
                                            H5P_DEFAULT, H5P_DEFAULT),
                                 s.tmp, "cannot create /names"));
  if (count > 0)
    h5::check(H5Dwrite(name_set.get(), string_type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()), s.tmp,
              "cannot write /names");
}

LatentStoreWriter::~LatentStoreWriter() {
  if (impl_ && !impl_->finished) {
    impl_->mu.clear();
    impl_->logvar.clear();
    impl_->file.reset();
    std::error_code ignored;
    std::filesystem::remove(impl_->tmp, ignored);
  }
}

void LatentStoreWriter::write(int resolution, int64_t first, int64_t count, const float* mu, const float* logvar) {
  Impl& s = *impl_;
  const int l = s.level(resolution);
  LADDER_CHECK(first >= 0 && first + count <= s.info.count, "latent store: images [", first, ", ", first + count, ")");
  if (count == 0) return;
  const hsize_t side = static_cast<hsize_t>(resolution / s.info.downsampling);
  const int64_t per_image = static_cast<int64_t>(side * side) * s.info.latent_channels;
  const hsize_t start[4] = {static_cast<hsize_t>(first), 0, 0, 0};
  const hsize_t block[4] = {static_cast<hsize_t>(count), side, side, static_cast<hsize_t>(s.info.latent_channels)};
  for (auto [dataset, data] : {std::pair{&s.mu[l], mu}, std::pair{&s.logvar[l], logvar}}) {
    h5::Dataspace file_space(h5::check(H5Dget_space(dataset->get()), s.tmp, "latents"));
    h5::check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, block, nullptr), s.tmp, "latents");
    h5::Dataspace memory(h5::check(H5Screate_simple(4, block, nullptr), s.tmp, "latents"));
    h5::check(H5Dwrite(dataset->get(), H5T_NATIVE_FLOAT, memory.get(), file_space.get(), H5P_DEFAULT, data), s.tmp,
              "cannot write latents of ", resolution);
  }
  for (int64_t k = 0; k < count; ++k)
    s.checksums[l][first + k] = latent_checksum(mu + k * per_image, logvar + k * per_image, per_image);
}

void LatentStoreWriter::finish(double scale_factor) {
  Impl& s = *impl_;
  const hid_t root = s.file.get();
  h5::write_double_attribute(root, "scale_factor", scale_factor, s.tmp);
  for (size_t l = 0; l < s.info.resolutions.size(); ++l) {
    const hsize_t count = static_cast<hsize_t>(s.info.count);
    h5::Dataspace space(h5::check(H5Screate_simple(1, &count, nullptr), s.tmp, "checksums"));
    const std::string name = checksums_name(s.info.resolutions[l]);
    h5::Dataset sums(h5::check(H5Dcreate2(root, name.c_str(), H5T_STD_U64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                          H5P_DEFAULT),
                               s.tmp, "cannot create ", name));
    if (count > 0)
      h5::check(H5Dwrite(sums.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.checksums[l].data()), s.tmp,
                "cannot write ", name);
  }
  s.mu.clear();
  s.logvar.clear();
  LADDER_CHECK(s.file.close(), "cannot close ", s.tmp, " (HDF5: ", h5::last_error(), ")");
  std::filesystem::rename(s.tmp, s.path);
  s.finished = true;
}

// ---- Reader ----------------------------------------------------------------------------

struct LatentStoreReader::Impl {
  LatentStoreInfo info;
  h5::File file;
  const std::string& path() const { return info.path; }
};

bool is_latent_store(const std::string& path) {
  try {
    h5::File file = h5::open_file(path);
    std::string format;
    return h5::read_string_attribute(file.get(), "format", &format, path) && format == kFormat;
  } catch (const Error&) {
    return false;
  }
}

double scale_factor_of(const std::string& path) {
  return !path.empty() && is_latent_store(path) ? LatentStoreReader(path).info().scale_factor : 0.0;
}

LatentStoreReader::LatentStoreReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.info.path = path;
  s.file = h5::open_file(path);
  const hid_t root = s.file.get();
  std::string format, checksum;
  if (!h5::read_string_attribute(root, "format", &format, path) || format != kFormat)
    LADDER_FAIL(path, ": not a ladder latent store (format attribute)");
  int64_t version = 0, channels = 0, downsampling = 0, step = 0;
  if (!h5::read_int_attribute(root, "version", &version, path) || version != kVersion)
    LADDER_FAIL(path, ": latent store version ", version, " is not supported (this build reads ", kVersion, ")");
  if (!h5::read_string_attribute(root, "checksum", &checksum, path) || checksum != kChecksum)
    LADDER_FAIL(path, ": no xxh3-64 checksum attribute");
  // Bounded before they become ints (a crafted 2^32 would wrap to 0 and divide by it).
  if (!h5::read_int_attribute(root, "latent_channels", &channels, path) || channels < 1 || channels > 65536)
    LADDER_FAIL(path, ": bad or missing latent_channels (1..65536)");
  if (!h5::read_int_attribute(root, "downsampling", &downsampling, path) || downsampling < 1 || downsampling > 65536)
    LADDER_FAIL(path, ": bad or missing downsampling (1..65536)");
  if (!h5::read_double_attribute(root, "scale_factor", &s.info.scale_factor, path) || !(s.info.scale_factor > 0))
    LADDER_FAIL(path, ": bad or missing scale_factor");
  h5::read_string_attribute(root, "autoencoder", &s.info.autoencoder, path);
  h5::read_string_attribute(root, "autoencoder_checkpoint", &s.info.autoencoder_checkpoint, path);
  h5::read_int_attribute(root, "autoencoder_step", &step, path);
  s.info.latent_channels = static_cast<int>(channels);
  s.info.downsampling = static_cast<int>(downsampling);
  s.info.autoencoder_step = step;
  if (!h5::exists(root, "/levels")) LADDER_FAIL(path, ": no /levels group");
  for (std::string name : h5::list_datasets(root)) {  // levels/R/mu
    if (!name.empty() && name[0] == '/') name.erase(0, 1);
    if (name.rfind("levels/", 0) != 0 || name.size() < 11 || name.compare(name.size() - 3, 3, "/mu") != 0) continue;
    const std::string digits = name.substr(7, name.size() - 10);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 6)
      LADDER_FAIL(path, ": /", name, ": level names must be image resolutions");
    s.info.resolutions.push_back(std::stoi(digits));
  }
  std::sort(s.info.resolutions.begin(), s.info.resolutions.end());
  if (s.info.resolutions.empty()) LADDER_FAIL(path, ": no /levels/R/mu datasets");
  s.info.count = -1;
  for (int r : s.info.resolutions) {
    const int64_t side = r / s.info.downsampling;
    for (const char* part : {"/mu", "/logvar"}) {
      const h5::Dataset dataset = open_dataset(root, level_group(r) + part, path);
      const std::vector<hsize_t> dims = h5::shape(dataset.get());
      if (dims.size() != 4 || static_cast<int64_t>(dims[1]) != side || static_cast<int64_t>(dims[2]) != side ||
          static_cast<int64_t>(dims[3]) != channels)
        LADDER_FAIL(path, ": ", level_group(r), part, " has shape ", h5::describe_shape(dims), ", expected (N, ", side,
                    ", ", side, ", ", channels, ")");
      if (s.info.count < 0) s.info.count = static_cast<int64_t>(dims[0]);
      if (static_cast<int64_t>(dims[0]) != s.info.count) LADDER_FAIL(path, ": levels hold different image counts");
    }
    const h5::Dataset sums = open_dataset(root, checksums_name(r), path);
    if (h5::shape(sums.get()) != std::vector<hsize_t>{static_cast<hsize_t>(s.info.count)})
      LADDER_FAIL(path, ": ", checksums_name(r), " does not hold one checksum per image");
  }
}

LatentStoreReader::~LatentStoreReader() = default;

const LatentStoreInfo& LatentStoreReader::info() const { return impl_->info; }

data::ImageShard LatentStoreReader::load_shard(int resolution, int rank, int world,
                                               data::ImageRange range) const {
  const Impl& s = *impl_;
  const auto& levels = s.info.resolutions;
  if (std::find(levels.begin(), levels.end(), resolution) == levels.end())
    LADDER_FAIL(s.path(), ": no latents for image resolution ", resolution);
  const int channels = s.info.latent_channels;
  data::ImageShard shard;
  shard.resolution = resolution / s.info.downsampling;
  shard.channels = 2 * channels;
  shard.type = data::PixelType::kFloat32;
  shard.latents = true;
  const int64_t end = range.end >= 0 ? std::min(range.end, s.info.count) : s.info.count;
  const int64_t first = std::min(std::max<int64_t>(range.begin, 0), end) + rank;  // the rank's first image
  const int64_t count = end > first ? (end - first + world - 1) / world : 0;
  for (int64_t k = 0; k < count; ++k) shard.indices.push_back(first + k * world);
  const int64_t pixels = int64_t(shard.resolution) * shard.resolution;
  const int64_t per_image = pixels * channels;
  shard.pixels = HostBuffer<uint8_t>(count * shard.image_bytes());
  const h5::Dataset mu = open_dataset(s.file.get(), level_group(resolution) + "/mu", s.path());
  const h5::Dataset logvar = open_dataset(s.file.get(), level_group(resolution) + "/logvar", s.path());
  const h5::Dataset sums = open_dataset(s.file.get(), checksums_name(resolution), s.path());
  std::vector<uint64_t> stored(static_cast<size_t>(s.info.count));
  if (!stored.empty())
    h5::check(H5Dread(sums.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, stored.data()), s.path(),
              "cannot read ", checksums_name(resolution));
  const std::vector<hsize_t> dims = h5::shape(mu.get());
  std::vector<float> image_mu(static_cast<size_t>(per_image)), image_logvar(static_cast<size_t>(per_image));
  for (int64_t k = 0; k < count; ++k) {
    const int64_t index = shard.indices[k];
    read_rows(mu.get(), dims, index, 1, image_mu.data(), s.path(), "mu");
    read_rows(logvar.get(), dims, index, 1, image_logvar.data(), s.path(), "logvar");
    if (latent_checksum(image_mu.data(), image_logvar.data(), per_image) != stored[index])
      LADDER_FAIL(s.path(), ": latents of image ", index, " at resolution ", resolution,
                  ": checksum mismatch (corrupt data)");
    auto* record = reinterpret_cast<float*>(shard.pixels.data() + k * shard.image_bytes());
    for (int64_t p = 0; p < pixels; ++p) {  // (side, side, [μ | log σ²])
      std::copy_n(image_mu.data() + p * channels, channels, record + p * 2 * channels);
      std::copy_n(image_logvar.data() + p * channels, channels, record + p * 2 * channels + channels);
    }
  }
  return shard;
}

void LatentStoreReader::verify_all() const {
  for (int resolution : impl_->info.resolutions) load_shard(resolution, 0, 1);
}

}  // namespace ladder::io
