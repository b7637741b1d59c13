// Why this file exists: the HDF5 image store of BRIEF §5 (format 1, see io/image_store.h):
// the writer behind `ladder pack`, and the reader behind the trainer and `ladder inspect`,
// which validates the structure on open (one clear line per problem), loads a rank's share
// with one strided read straight into RAM and verifies every image's checksum.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/check.h"
#include "io/hdf5.h"
#include "io/image_store.h"

namespace ladder::io {
namespace {

constexpr const char* kFormat = "ladder-image-store";
constexpr int64_t kVersion = 2;  // the newest this build reads and writes (1: uint8 only)
// The per-image checksum function. Stores without this attribute were written by builds
// whose checksum was a hand-written hash: they are refused with a message to repack.
constexpr const char* kChecksum = "xxh3-64";
// Block reads (verify_all, box-filtered foreign loads) hold at most this much source data.
constexpr int64_t kBlockBytes = int64_t{256} << 20;

std::string level_name(int resolution) { return "/levels/" + std::to_string(resolution); }
std::string checksum_name(int resolution) { return "/checksums/" + std::to_string(resolution); }

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

// Chunked and extendible along the first axis: chunk = `chunk` (e.g. (1, R, R, C): one image).
// written_whole: every chunk is written in full (no fill values needed).
h5::Dataset create_extendible(hid_t location, const std::string& name, hid_t type,
                              std::vector<hsize_t> chunk, const std::string& path,
                              bool written_whole = false) {
  const int rank = static_cast<int>(chunk.size());
  std::vector<hsize_t> dims = chunk, max_dims = chunk;
  dims[0] = 0;
  max_dims[0] = H5S_UNLIMITED;
  h5::Dataspace space(h5::check(H5Screate_simple(rank, dims.data(), max_dims.data()), path, name));
  h5::PropList create(h5::check(H5Pcreate(H5P_DATASET_CREATE), path, name));
  h5::check(H5Pset_chunk(create.get(), rank, chunk.data()), path, "chunking ", name);
  // Image chunks are written whole: never spend a write on fill values. (Variable-length
  // strings need their fill value, so the names keep HDF5's default.)
  if (written_whole) h5::check(H5Pset_fill_time(create.get(), H5D_FILL_TIME_NEVER), path, name);
  return h5::Dataset(h5::check(H5Dcreate2(location, name.c_str(), type, space.get(), H5P_DEFAULT,
                                          create.get(), H5P_DEFAULT),
                               path, "cannot create dataset ", name));
}

// Writes a 1-D dataset of `count` elements at once (chunked, extendible like the levels).
void write_vector(hid_t file, const std::string& name, hid_t file_type, hid_t memory_type,
                  const void* data, int64_t count, const std::string& path) {
  const hsize_t chunk = static_cast<hsize_t>(std::clamp<int64_t>(count, 1, 65536));
  h5::Dataset dataset = create_extendible(file, name, file_type, {chunk}, path);
  if (count == 0) return;
  const hsize_t dims = static_cast<hsize_t>(count);
  h5::check(H5Dset_extent(dataset.get(), &dims), path, "cannot extend ", name);
  h5::check(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path,
            "cannot write ", name);
}

// Dataset access with a chunk cache of `bytes`. Format-1 levels get none: each chunk is one
// whole image, read straight between the file and our buffer, and a cache would only add a
// copy. Foreign datasets may hold several images per chunk (and compress them): there the
// cache keeps a chunk while its images are read one by one.
h5::PropList chunk_cache_access(int64_t bytes, const std::string& path) {
  h5::PropList access(h5::check(H5Pcreate(H5P_DATASET_ACCESS), path, "dataset access"));
  h5::check(H5Pset_chunk_cache(access.get(), bytes > 0 ? 12421 : H5D_CHUNK_CACHE_NSLOTS_DEFAULT,
                               static_cast<size_t>(bytes), H5D_CHUNK_CACHE_W0_DEFAULT),
            path, "dataset access");
  return access;
}

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return;  // best effort (e.g. a directory on a filesystem that refuses it)
  ::fsync(fd);
  ::close(fd);
}

// Reads `count` whole images (H, W, C), image first + k × stride into dst[k], dst being
// (count, H, W, C). A contiguous run is one H5Dread of one block, which HDF5 1.10 turns into
// one read per chunk straight into dst. A strided run is one H5Dread per image instead: given
// a strided file selection and a dense memory buffer, HDF5 1.10 matches them element by
// element (measured: ~0.01 GB/s, against ~5 GB/s per image), so each image (one chunk in a
// format-1 store) is read into its place on its own.
void read_images(hid_t dataset, const std::vector<hsize_t>& dims, int64_t first, int64_t stride,
                 int64_t count, uint8_t* dst, const std::string& path, const std::string& what,
                 data::PixelType type) {
  if (count == 0) return;
  h5::Dataspace file_space(h5::check(H5Dget_space(dataset), path, what));
  const h5::Datatype memory_type = h5::memory_type(type);
  const int64_t image_bytes = static_cast<int64_t>(dims[1] * dims[2] * dims[3]) * data::pixel_type_bytes(type);
  const hsize_t run = stride == 1 ? static_cast<hsize_t>(count) : 1;
  const hsize_t block[4] = {run, dims[1], dims[2], dims[3]};  // (run, H, W, C)
  h5::Dataspace memory_space(h5::check(H5Screate_simple(4, block, nullptr), path, what));
  for (int64_t k = 0; k < count; k += static_cast<int64_t>(run)) {
    const hsize_t start[4] = {static_cast<hsize_t>(first + k * stride), 0, 0, 0};
    h5::check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, block, nullptr),
              path, "selecting image ", first + k * stride, " of ", what);
    h5::check(H5Dread(dataset, memory_type.get(), memory_space.get(), file_space.get(), H5P_DEFAULT,
                      dst + k * image_bytes),
              path, "cannot read image ", first + k * stride, " of ", what,
              " (truncated or damaged file)");
  }
}

// store_checksum of each image of `images` (count, image_bytes), in parallel.
void checksum_images(const uint8_t* images, int64_t count, int64_t image_bytes, uint64_t* out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) out[i] = store_checksum(images + i * image_bytes, image_bytes);
}

// The level checksum: store_checksum over the per-image checksums as little-endian bytes.
uint64_t level_checksum(const std::vector<uint64_t>& image_checksums) {
  std::vector<uint8_t> bytes(image_checksums.size() * 8);
  for (size_t i = 0; i < image_checksums.size(); ++i)
    for (int b = 0; b < 8; ++b) bytes[i * 8 + b] = static_cast<uint8_t>(image_checksums[i] >> (8 * b));
  return store_checksum(bytes.data(), static_cast<int64_t>(bytes.size()));
}

// A positive decimal integer without sign or leading zeros, or 0.
int parse_resolution(const std::string& text) {
  if (text.empty() || text.size() > 6 || text[0] == '0') return 0;
  for (char c : text)
    if (c < '0' || c > '9') return 0;
  return std::stoi(text);
}

herr_t collect_link(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

}  // namespace

// ---- Writer ----

struct ImageStoreWriter::Impl {
  std::string path, tmp;
  int channels = 0;
  data::PixelType type = data::PixelType::kUint8;
  h5::Datatype memory_type;  // of `type`, for every append
  std::vector<int> levels;
  h5::File file;
  std::vector<h5::Dataset> images;             // per level: (n, R, R, C)
  std::vector<std::vector<uint64_t>> checksums;  // per level: one per image
  std::vector<std::string> names;
  int64_t count = 0;
  bool broken = false;  // an append failed half way: the store can no longer be finished
  bool finished = false;

  ~Impl() {
    if (finished) return;
    images.clear();
    file.reset();
    std::remove(tmp.c_str());
  }
};

ImageStoreWriter::ImageStoreWriter(const std::string& path, int channels, std::vector<int> levels,
                                   data::PixelType type, std::optional<StatedIntensity> stated)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.path = path;
  s.tmp = path + ".tmp";
  s.channels = channels;
  s.type = type;
  s.memory_type = h5::memory_type(type);
  s.levels = std::move(levels);
  LADDER_CHECK(channels >= 1 && channels <= 4, path, ": channels must be 1..4, got ", channels);
  LADDER_CHECK(!s.levels.empty(), path, ": a store needs at least one level");
  for (size_t l = 0; l < s.levels.size(); ++l) {
    LADDER_CHECK(s.levels[l] > 0, path, ": level ", s.levels[l], " is not a resolution");
    LADDER_CHECK(std::count(s.levels.begin(), s.levels.end(), s.levels[l]) == 1, path, ": level ",
                 s.levels[l], " given twice");
  }

  s.file = h5::create_file(s.tmp);
  const hid_t root = s.file.get();
  const bool format_1 = type == data::PixelType::kUint8 && !stated;
  h5::write_string_attribute(root, "format", kFormat, s.tmp);
  h5::write_int_attribute(root, "version", format_1 ? 1 : kVersion, s.tmp);
  h5::write_int_attribute(root, "channels", channels, s.tmp);
  h5::write_string_attribute(root, "checksum", kChecksum, s.tmp);
  if (!format_1) h5::write_string_attribute(root, "pixel_type", data::pixel_type_name(type), s.tmp);
  if (stated) {
    h5::write_double_attribute(root, "intensity_low", stated->low, s.tmp);
    h5::write_double_attribute(root, "intensity_high", stated->high, s.tmp);
    if (!stated->unit.empty()) h5::write_string_attribute(root, "intensity_unit", stated->unit, s.tmp);
  }
  const h5::Datatype stored_type = h5::file_type(type);
  h5::Group group(h5::check(H5Gcreate2(root, "/levels", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                            s.tmp, "cannot create /levels"));
  for (int r : s.levels) {
    const hsize_t side = static_cast<hsize_t>(r);
    s.images.push_back(create_extendible(root, level_name(r), stored_type.get(),
                                         {1, side, side, static_cast<hsize_t>(channels)}, s.tmp,
                                         /*written_whole=*/true));
  }
  s.checksums.resize(s.levels.size());
}

ImageStoreWriter::~ImageStoreWriter() = default;  // Impl removes an unfinished temporary file

void ImageStoreWriter::append(const std::vector<const uint8_t*>& pixels, const std::string& name) {
  Impl& s = *impl_;
  LADDER_CHECK(!s.finished && !s.broken, s.path, ": append after finish() or a failed append");
  LADDER_CHECK(pixels.size() == s.levels.size(), s.path, ": append got ", pixels.size(),
               " images for ", s.levels.size(), " levels");
  s.broken = true;
  for (size_t l = 0; l < s.levels.size(); ++l) {
    LADDER_CHECK(pixels[l] != nullptr, s.path, ": append: no pixels for level ", s.levels[l]);
    const hsize_t side = static_cast<hsize_t>(s.levels[l]);
    const hsize_t c = static_cast<hsize_t>(s.channels);
    const hid_t dataset = s.images[l].get();
    const std::string what = level_name(s.levels[l]);
    const hsize_t dims[4] = {static_cast<hsize_t>(s.count) + 1, side, side, c};
    h5::check(H5Dset_extent(dataset, dims), s.tmp, "cannot extend ", what);
    h5::Dataspace file_space(h5::check(H5Dget_space(dataset), s.tmp, what));
    const hsize_t start[4] = {static_cast<hsize_t>(s.count), 0, 0, 0};
    const hsize_t one[4] = {1, side, side, c};  // (1, R, R, C): one image, one chunk
    h5::check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, one, nullptr),
              s.tmp, what);
    h5::Dataspace memory_space(h5::check(H5Screate_simple(4, one, nullptr), s.tmp, what));
    h5::check(H5Dwrite(dataset, s.memory_type.get(), memory_space.get(), file_space.get(), H5P_DEFAULT, pixels[l]),
              s.tmp, "cannot write image ", s.count, " of ", what);
    s.checksums[l].push_back(
        store_checksum(pixels[l], static_cast<int64_t>(side * side * c) * data::pixel_type_bytes(s.type)));
  }
  s.names.push_back(name);
  ++s.count;
  s.broken = false;
}

int64_t ImageStoreWriter::count() const { return impl_->count; }

void ImageStoreWriter::finish() {
  Impl& s = *impl_;
  LADDER_CHECK(!s.finished && !s.broken, s.path, ": finish() twice or after a failed append");
  const hid_t root = s.file.get();
  {
    h5::Group group(h5::check(H5Gcreate2(root, "/checksums", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                              s.tmp, "cannot create /checksums"));
  }
  for (size_t l = 0; l < s.levels.size(); ++l)
    write_vector(root, checksum_name(s.levels[l]), H5T_STD_U64LE, H5T_NATIVE_UINT64,
                 s.checksums[l].data(), s.count, s.tmp);
  std::vector<const char*> names(s.names.size());
  for (size_t i = 0; i < names.size(); ++i) names[i] = s.names[i].c_str();
  h5::Datatype string_type = h5::vlen_string_type();
  write_vector(root, "/names", string_type.get(), string_type.get(), names.data(), s.count, s.tmp);

  h5::check(H5Fflush(root, H5F_SCOPE_LOCAL), s.tmp, "cannot flush");
  for (h5::Dataset& dataset : s.images)
    if (!dataset.close()) h5::fail(s.tmp, "cannot close a level dataset");
  if (!s.file.close()) h5::fail(s.tmp, "cannot close the file");
  fsync_path(s.tmp, O_RDONLY);
  if (std::rename(s.tmp.c_str(), s.path.c_str()) != 0)
    LADDER_FAIL("cannot rename ", s.tmp, " to ", s.path, ": ", std::strerror(errno));
  s.finished = true;
  const std::string parent = std::filesystem::path(s.path).parent_path().string();
  fsync_path(parent.empty() ? "." : parent, O_RDONLY | O_DIRECTORY);
}

// ---- Reader ----

struct ImageStoreReader::Impl {
  StoreInfo info;
  h5::File file;
  std::vector<h5::Dataset> images;     // format 1: per info.levels entry, (N, R, R, C)
  std::vector<h5::Dataset> checksums;  // format 1: per info.levels entry, (N)
  h5::Dataset names;                   // format 1: (N) strings
  h5::Dataset foreign;                 // foreign: (N, H, W, C) or (N, C, H, W)

  const std::string& path() const { return info.path; }
  void open_store();
  void open_foreign(const std::string& dataset, const std::string& layout);
  int level_index(int resolution) const;
  std::string levels_text() const;
  std::string image_name(int64_t index) const;
  [[noreturn]] void checksum_mismatch(int resolution, int64_t index) const;
};

void ImageStoreReader::Impl::open_store() {
  const hid_t root = file.get();
  std::string format;
  if (!h5::read_string_attribute(root, "format", &format, path())) {
    const std::vector<std::string> datasets = h5::list_datasets(root);
    LADDER_FAIL(path(), ": not a ladder image store (no 'format' attribute); for a plain "
                "(N, H, W, C) uint8 dataset name it with data.dataset or --dataset (",
                datasets.empty() ? "no datasets in this file" : "datasets here: " + join(datasets),
                ")");
  }
  if (format != kFormat)
    LADDER_FAIL(path(), ": format attribute is '", format, "', expected '", kFormat, "'");
  int64_t version = 0, channels = 0;
  if (!h5::read_int_attribute(root, "version", &version, path()))
    LADDER_FAIL(path(), ": no 'version' attribute");
  if (version < 1 || version > kVersion)
    LADDER_FAIL(path(), ": store version ", version, " is not supported (this build reads versions 1 to ",
                kVersion, ")");
  info.version = static_cast<int>(version);
  if (version >= 2) {
    std::string type_name;
    if (!h5::read_string_attribute(root, "pixel_type", &type_name, path()))
      LADDER_FAIL(path(), ": a version-2 store without a 'pixel_type' attribute");
    if (!data::parse_pixel_type(type_name, info.type))
      LADDER_FAIL(path(), ": pixel_type attribute is '", type_name, "', expected uint8, uint16, float16 or float32");
    double low = 0, high = 0;
    const bool has_low = h5::read_double_attribute(root, "intensity_low", &low, path());
    const bool has_high = h5::read_double_attribute(root, "intensity_high", &high, path());
    if (has_low != has_high)
      LADDER_FAIL(path(), ": intensity_low and intensity_high come together (one of them is missing)");
    if (has_low) {
      if (!(std::isfinite(low) && std::isfinite(high) && low < high))
        LADDER_FAIL(path(), ": the stated intensity range ", low, "..", high, " is not a range");
      StatedIntensity stated{low, high, ""};
      h5::read_string_attribute(root, "intensity_unit", &stated.unit, path());
      info.stated = stated;
    }
  }
  std::string checksum;
  if (!h5::read_string_attribute(root, "checksum", &checksum, path()))
    LADDER_FAIL(path(), ": written by an older ladder whose image checksums this build does not "
                "compute (no 'checksum' attribute); repack it with ladder pack");
  if (checksum != kChecksum)
    LADDER_FAIL(path(), ": checksum attribute is '", checksum, "', expected '", kChecksum,
                "'; repack it with ladder pack");
  if (!h5::read_int_attribute(root, "channels", &channels, path()))
    LADDER_FAIL(path(), ": no 'channels' attribute");
  if (channels < 1 || channels > 4)
    LADDER_FAIL(path(), ": channels attribute is ", channels, ", expected 1..4");
  info.channels = static_cast<int>(channels);

  if (!h5::exists(root, "/levels")) LADDER_FAIL(path(), ": no /levels group");
  std::vector<std::string> links;
  {
    h5::Group group(h5::check(H5Gopen2(root, "/levels", H5P_DEFAULT), path(), "/levels is not a group"));
    h5::check(H5Literate(group.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link, &links),
              path(), "cannot list /levels");
  }
  std::vector<int> resolutions;
  for (const std::string& link : links) {
    const int r = parse_resolution(link);
    if (r == 0) LADDER_FAIL(path(), ": /levels/", link, ": level names must be resolutions (e.g. 256)");
    resolutions.push_back(r);
  }
  if (resolutions.empty()) LADDER_FAIL(path(), ": no levels in /levels");
  std::sort(resolutions.begin(), resolutions.end());

  const h5::PropList access = chunk_cache_access(0, path());
  std::string first_level;
  for (int r : resolutions) {
    const std::string name = level_name(r);
    if (!h5::is_dataset(root, name)) LADDER_FAIL(path(), ": ", name, " is not a dataset");
    h5::Dataset dataset(h5::check(H5Dopen2(root, name.c_str(), access.get()), path(),
                                  "cannot open ", name));
    h5::Datatype type(h5::check(H5Dget_type(dataset.get()), path(), name));
    data::PixelType stored = data::PixelType::kUint8;
    if (!h5::pixel_type_of(type.get(), &stored) || stored != info.type)
      LADDER_FAIL(path(), ": ", name, " has dtype ", h5::describe_type(type.get()), ", expected ",
                  data::pixel_type_name(info.type));
    const std::vector<hsize_t> dims = h5::shape(dataset.get());
    const hsize_t side = static_cast<hsize_t>(r);
    if (dims.size() != 4 || dims[1] != side || dims[2] != side ||
        dims[3] != static_cast<hsize_t>(channels))
      LADDER_FAIL(path(), ": ", name, " has shape ", h5::describe_shape(dims), ", expected (N, ", r,
                  ", ", r, ", ", channels, ")");
    const int64_t n = static_cast<int64_t>(dims[0]);
    if (first_level.empty()) {
      first_level = name;
      info.count = n;
    } else if (n != info.count) {
      LADDER_FAIL(path(), ": count mismatch: ", first_level, " has ", info.count, " images, ", name,
                  " has ", n);
    }

    const std::string sums = checksum_name(r);
    if (!h5::is_dataset(root, sums))
      LADDER_FAIL(path(), ": missing ", sums, " (the per-image checksums of ", name, ")");
    h5::Dataset sum_set(h5::check(H5Dopen2(root, sums.c_str(), H5P_DEFAULT), path(), "cannot open ", sums));
    h5::Datatype sum_type(h5::check(H5Dget_type(sum_set.get()), path(), sums));
    if (!h5::is_uint64(sum_type.get()))
      LADDER_FAIL(path(), ": ", sums, " has dtype ", h5::describe_type(sum_type.get()), ", expected uint64");
    const std::vector<hsize_t> sum_dims = h5::shape(sum_set.get());
    if (sum_dims.size() != 1)
      LADDER_FAIL(path(), ": ", sums, " has shape ", h5::describe_shape(sum_dims), ", expected (N,)");
    if (static_cast<int64_t>(sum_dims[0]) != n)
      LADDER_FAIL(path(), ": count mismatch: ", sums, " has ", sum_dims[0], " entries, ", name,
                  " has ", n, " images");

    images.push_back(std::move(dataset));
    checksums.push_back(std::move(sum_set));
    info.levels.push_back({r, n * r * r * channels * data::pixel_type_bytes(info.type), 0});
  }

  if (!h5::is_dataset(root, "/names")) LADDER_FAIL(path(), ": missing /names (the source of each image)");
  names = h5::Dataset(h5::check(H5Dopen2(root, "/names", H5P_DEFAULT), path(), "cannot open /names"));
  h5::Datatype name_type(h5::check(H5Dget_type(names.get()), path(), "/names"));
  if (H5Tget_class(name_type.get()) != H5T_STRING)
    LADDER_FAIL(path(), ": /names has dtype ", h5::describe_type(name_type.get()), ", expected strings");
  const std::vector<hsize_t> name_dims = h5::shape(names.get());
  if (name_dims.size() != 1)
    LADDER_FAIL(path(), ": /names has shape ", h5::describe_shape(name_dims), ", expected (N,)");
  if (static_cast<int64_t>(name_dims[0]) != info.count)
    LADDER_FAIL(path(), ": count mismatch: /names has ", name_dims[0], " entries, ", first_level,
                " has ", info.count, " images");
}

void ImageStoreReader::Impl::open_foreign(const std::string& name, const std::string& layout) {
  const hid_t root = file.get();
  info.foreign = true;
  info.dataset = name;
  if (!h5::is_dataset(root, name)) {
    const std::vector<std::string> datasets = h5::list_datasets(root);
    LADDER_FAIL(path(), ": no dataset '", name, "' (",
                datasets.empty() ? "no datasets in this file" : "datasets here: " + join(datasets), ")");
  }
  const h5::PropList access = chunk_cache_access(int64_t{64} << 20, path());
  foreign = h5::Dataset(h5::check(H5Dopen2(root, name.c_str(), access.get()), path(),
                                  "cannot open dataset '", name, "'"));
  h5::Datatype type(h5::check(H5Dget_type(foreign.get()), path(), name));
  if (!h5::pixel_type_of(type.get(), &info.type))
    LADDER_FAIL(path(), ": dataset '", name, "' has dtype ", h5::describe_type(type.get()),
                ", expected uint8, uint16, float16 or float32");
  const std::vector<hsize_t> dims = h5::shape(foreign.get());
  const std::string shape = h5::describe_shape(dims);
  if (dims.size() != 4)
    LADDER_FAIL(path(), ": dataset '", name, "' has shape ", shape, ", expected (N, H, W, C) or (N, C, H, W)");
  const auto channels_ok = [](hsize_t c) { return c >= 1 && c <= 4; };
  const bool nhwc = dims[1] == dims[2] && channels_ok(dims[3]);
  const bool nchw = dims[2] == dims[3] && channels_ok(dims[1]);
  if (layout == "nhwc" && !nhwc)
    LADDER_FAIL(path(), ": dataset '", name, "' has shape ", shape, ", which is not (N, H, W, C) with H = W and ",
                "1..4 channels (data.layout = nhwc", nchw ? "; it reads as (N, C, H, W): data.layout = nchw" : "", ")");
  if (layout == "nchw" && !nchw)
    LADDER_FAIL(path(), ": dataset '", name, "' has shape ", shape, ", which is not (N, C, H, W) with H = W and ",
                "1..4 channels (data.layout = nchw", nhwc ? "; it reads as (N, H, W, C): data.layout = nhwc" : "", ")");
  if (layout == "auto" && nhwc && nchw)
    throw UsageError(detail::concat(path(), ": dataset '", name, "' has shape ", shape, ", which reads both as ",
                                    "(N, H, W, C) and as (N, C, H, W); say which with data.layout = nhwc or nchw"));
  if (layout == "auto" && !nhwc && !nchw) {
    if (dims[1] == dims[2])
      LADDER_FAIL(path(), ": dataset '", name, "' has shape ", shape, ": ", dims[3],
                  " channels, expected 1..4 (N, H, W, C)");
    if (dims[2] == dims[3])
      LADDER_FAIL(path(), ": dataset '", name, "' has shape ", shape, ": ", dims[1],
                  " channels, expected 1..4 (N, C, H, W)");
    LADDER_FAIL(path(), ": dataset '", name, "' has shape ", shape, ": its ", dims[1], "x", dims[2],
                " images are not square (H must equal W), nor its ", dims[2], "x", dims[3], " ones read as (N, C, H, W)");
  }
  info.channels_first = layout == "nchw" || (layout == "auto" && nchw);
  const hsize_t side = info.channels_first ? dims[2] : dims[1];
  if (side < 1 || side > (1u << 16))
    LADDER_FAIL(path(), ": dataset '", name, "' has shape ", shape, ": unsupported image size");
  info.count = static_cast<int64_t>(dims[0]);
  info.height = info.width = static_cast<int>(side);
  info.channels = static_cast<int>(info.channels_first ? dims[1] : dims[3]);
  info.levels.push_back({info.height, info.count * info.height * info.width * info.channels *
                                          data::pixel_type_bytes(info.type), 0});
}

int ImageStoreReader::Impl::level_index(int resolution) const {
  for (size_t l = 0; l < info.levels.size(); ++l)
    if (info.levels[l].resolution == resolution) return static_cast<int>(l);
  return -1;
}

std::string ImageStoreReader::Impl::levels_text() const {
  std::vector<std::string> items;
  for (const StoreLevel& level : info.levels) items.push_back(std::to_string(level.resolution));
  return join(items);
}

std::string ImageStoreReader::name(int64_t index) const {
  if (impl_->info.foreign) return "image " + std::to_string(index);
  return impl_->image_name(index);
}

std::string ImageStoreReader::Impl::image_name(int64_t index) const {
  try {
    return h5::read_string_element(names.get(), static_cast<hsize_t>(index), path());
  } catch (const Error&) {
    return "?";  // the name only decorates an error that is already on its way
  }
}

void ImageStoreReader::Impl::checksum_mismatch(int resolution, int64_t index) const {
  LADDER_FAIL(path(), ": level ", resolution, ", image ", index, " ('", image_name(index),
              "'): checksum mismatch (corrupt data)");
}

ImageStoreReader::ImageStoreReader(const std::string& path, const std::string& dataset, const std::string& layout)
    : impl_(std::make_unique<Impl>()) {
  impl_->info.path = path;
  impl_->file = h5::open_file(path);
  if (dataset.empty())
    impl_->open_store();
  else
    impl_->open_foreign(dataset, layout);
}

data::IntensityTransform ImageStoreReader::intensity_transform(data::IntensitySpec intensity) const {
  const StoreInfo& info = impl_->info;
  std::optional<std::pair<double, double>> stated;
  if (info.stated) stated = std::make_pair(info.stated->low, info.stated->high);
  return data::IntensityTransform(intensity, info.type, stated);
}

ImageStoreReader::~ImageStoreReader() = default;

const StoreInfo& ImageStoreReader::info() const { return impl_->info; }

bool ImageStoreReader::has_resolution(int resolution) const {
  const StoreInfo& info = impl_->info;
  if (info.foreign) return resolution >= 1 && resolution <= info.height && info.height % resolution == 0;
  return impl_->level_index(resolution) >= 0;
}

data::ImageShard ImageStoreReader::load_shard(int resolution, int rank, int world, data::ImageRange range,
                                              data::IntensitySpec intensity) const {
  const Impl& s = *impl_;
  const StoreInfo& info = s.info;
  LADDER_CHECK(world >= 1 && rank >= 0 && rank < world, "load_shard: rank ", rank, " of world ", world);
  if (!has_resolution(resolution)) {
    if (!info.foreign)
      LADDER_FAIL(s.path(), ": no level ", resolution, " (levels: ", s.levels_text(), ")");
    std::vector<std::string> usable;
    for (int r = info.height; r >= 1; --r)
      if (info.height % r == 0) usable.push_back(std::to_string(r));
    LADDER_FAIL(s.path(), ": dataset '", info.dataset, "' holds ", info.height, "x", info.width,
                " images; resolution ", resolution, " is not ", info.height,
                "/k for an integer k (usable: ", join(usable), ")");
  }

  data::ImageShard shard;
  shard.resolution = resolution;
  shard.channels = info.channels;
  shard.type = info.type;
  shard.intensity = intensity_transform(intensity);
  const int64_t end = range.end >= 0 ? std::min(range.end, info.count) : info.count;
  const int64_t begin = std::min(std::max<int64_t>(range.begin, 0), end);
  const int64_t first = begin + rank;  // the rank's first image
  const int64_t count = end > first ? (end - first + world - 1) / world : 0;
  shard.indices.resize(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) shard.indices[k] = first + k * world;
  shard.pixels = HostBuffer<uint8_t>(count * shard.image_bytes());  // (count, R, R, C)
  if (count == 0) return shard;
  const int64_t image_bytes = shard.image_bytes();

  if (!info.foreign) {
    const int l = s.level_index(resolution);
    const hid_t dataset = s.images[l].get();
    read_images(dataset, h5::shape(dataset), first, world, count, shard.pixels.data(), s.path(),
                "level " + std::to_string(resolution), info.type);
    std::vector<uint64_t> stored(static_cast<size_t>(info.count));
    h5::check(H5Dread(s.checksums[l].get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                      stored.data()),
              s.path(), "cannot read ", checksum_name(resolution));
    std::vector<uint64_t> actual(static_cast<size_t>(count));
    checksum_images(shard.pixels.data(), count, image_bytes, actual.data());
    for (int64_t k = 0; k < count; ++k)
      if (actual[k] != stored[shard.indices[k]]) s.checksum_mismatch(resolution, shard.indices[k]);
    return shard;
  }

  const hid_t dataset = s.foreign.get();
  const std::vector<hsize_t> dims = h5::shape(dataset);  // (N, H, W, C) or (N, C, H, W)
  const std::string what = "dataset '" + info.dataset + "'";
  const int factor = info.height / resolution;
  if (factor == 1 && !info.channels_first) {
    read_images(dataset, dims, first, world, count, shard.pixels.data(), s.path(), what, info.type);
    return shard;
  }
  // Read blocks of source images; bring each to (H, W, C) and box-filter it into its place.
  const int64_t value_bytes = data::pixel_type_bytes(info.type);
  const int64_t source_bytes = int64_t(info.height) * info.width * info.channels * value_bytes;
  const int64_t block = std::clamp<int64_t>(kBlockBytes / source_bytes, 1, count);
  HostBuffer<uint8_t> source(block * source_bytes);  // (block, H, W, C) or (block, C, H, W)
  for (int64_t done = 0; done < count; done += block) {
    const int64_t n = std::min(block, count - done);
    read_images(dataset, dims, first + done * world, world, n, source.data(), s.path(), what, info.type);
    uint8_t* out = shard.pixels.data() + done * image_bytes;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* in = source.data() + i * source_bytes;
      std::vector<uint8_t> interleaved;
      if (info.channels_first) {  // (C, H, W) → (H, W, C)
        interleaved.resize(static_cast<size_t>(source_bytes));
        const int64_t plane = int64_t(info.height) * info.width;
        for (int64_t c = 0; c < info.channels; ++c)
          for (int64_t p = 0; p < plane; ++p)
            std::memcpy(interleaved.data() + (p * info.channels + c) * value_bytes, in + (c * plane + p) * value_bytes,
                        static_cast<size_t>(value_bytes));
        in = interleaved.data();
      }
      box_downsample_values(info.type, in, info.height, info.width, info.channels, factor, out + i * image_bytes);
    }
  }
  return shard;
}

void ImageStoreReader::verify_all() {
  Impl& s = *impl_;
  StoreInfo& info = s.info;
  const auto dataset_of = [&](size_t l) { return info.foreign ? s.foreign.get() : s.images[l].get(); };
  // Images per block read at level l, and one buffer big enough for the largest block.
  const auto block_of = [&](int64_t image_bytes) {
    return std::clamp<int64_t>(kBlockBytes / image_bytes, 1, std::max<int64_t>(info.count, 1));
  };
  int64_t buffer_bytes = 0;
  for (size_t l = 0; l < info.levels.size(); ++l) {
    const std::vector<hsize_t> dims = h5::shape(dataset_of(l));
    const int64_t image_bytes = static_cast<int64_t>(dims[1] * dims[2] * dims[3]) * data::pixel_type_bytes(info.type);
    buffer_bytes = std::max(buffer_bytes, block_of(image_bytes) * image_bytes);
  }
  HostBuffer<uint8_t> buffer(info.count > 0 ? buffer_bytes : 0);  // (block, H, W, C)

  for (size_t l = 0; l < info.levels.size(); ++l) {
    StoreLevel& level = info.levels[l];
    const hid_t dataset = dataset_of(l);
    const std::vector<hsize_t> dims = h5::shape(dataset);  // (N, H, W, C)
    const std::string what =
        info.foreign ? "dataset '" + info.dataset + "'" : "level " + std::to_string(level.resolution);
    std::vector<uint64_t> stored;
    if (!info.foreign) {
      stored.resize(static_cast<size_t>(info.count));
      h5::check(H5Dread(s.checksums[l].get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                        stored.data()),
                s.path(), "cannot read ", checksum_name(level.resolution));
    }
    const int64_t image_bytes = static_cast<int64_t>(dims[1] * dims[2] * dims[3]) * data::pixel_type_bytes(info.type);
    const int64_t block = block_of(image_bytes);
    std::vector<uint64_t> actual(static_cast<size_t>(info.count));
    for (int64_t first = 0; first < info.count; first += block) {
      const int64_t n = std::min(block, info.count - first);
      read_images(dataset, dims, first, 1, n, buffer.data(), s.path(), what, info.type);
      checksum_images(buffer.data(), n, image_bytes, actual.data() + first);
      if (!info.foreign)
        for (int64_t i = first; i < first + n; ++i)
          if (actual[i] != stored[i]) s.checksum_mismatch(level.resolution, i);
    }
    level.checksum = level_checksum(actual);
  }
}

}  // namespace ladder::io
