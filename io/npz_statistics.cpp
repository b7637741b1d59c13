// Why this file exists: reading pytorch-fid's .npz statistics (io/npz_statistics.h).
#include "io/npz_statistics.h"

#include <zip.h>

#include <cstring>
#include <memory>

#include "core/check.h"

namespace ladder::io {
namespace {

struct ZipArchiveCloser {
  void operator()(zip_t* archive) const { zip_discard(archive); }  // read-only: nothing to write back
};
struct ZipFileCloser {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};
using ZipArchive = std::unique_ptr<zip_t, ZipArchiveCloser>;
using ZipFile = std::unique_ptr<zip_file_t, ZipFileCloser>;

// The whole member `name` ("mu.npy").
std::string read_member(zip_t* archive, const std::string& path, const std::string& name) {
  zip_stat_t stat;
  zip_stat_init(&stat);
  LADDER_CHECK_USAGE(zip_stat(archive, name.c_str(), 0, &stat) == 0 && (stat.valid & ZIP_STAT_SIZE), path,
                     ": no array '", name.substr(0, name.size() - 4), "' (pytorch-fid statistics hold mu and sigma)");
  LADDER_CHECK_USAGE(stat.size <= (uint64_t{1} << 34), path, ": ", name, " is ", stat.size, " bytes; too large");
  ZipFile file(zip_fopen(archive, name.c_str(), 0));
  LADDER_CHECK_USAGE(file != nullptr, path, ": cannot open ", name, ": ", zip_strerror(archive));
  std::string bytes(static_cast<size_t>(stat.size), '\0');
  const zip_int64_t read = zip_fread(file.get(), bytes.data(), stat.size);
  LADDER_CHECK_USAGE(read == static_cast<zip_int64_t>(stat.size), path, ": ", name, " is damaged (read ", read,
                     " of ", stat.size, " bytes)");
  return bytes;
}

// The text after `key` in a .npy header dict ("'descr': '<f8', 'fortran_order': False, ...").
std::string header_value(const std::string& header, const std::string& key, const std::string& where) {
  const size_t at = header.find("'" + key + "':");
  LADDER_CHECK_USAGE(at != std::string::npos, where, ": the .npy header has no '", key, "'");
  size_t begin = at + key.size() + 3;
  while (begin < header.size() && header[begin] == ' ') ++begin;
  return header.substr(begin);
}

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<double> values;  // row-major
};

NpyArray parse_npy(const std::string& bytes, const std::string& where) {
  LADDER_CHECK_USAGE(bytes.size() >= 10 && bytes.compare(0, 6, "\x93NUMPY") == 0, where, ": not a .npy array");
  const int major = static_cast<unsigned char>(bytes[6]);
  LADDER_CHECK_USAGE(major >= 1 && major <= 3, where, ": .npy format version ", major, " is not supported");
  size_t header_length = 0, offset = 0;
  if (major == 1) {
    header_length = static_cast<unsigned char>(bytes[8]) | (size_t(static_cast<unsigned char>(bytes[9])) << 8);
    offset = 10;
  } else {
    LADDER_CHECK_USAGE(bytes.size() >= 12, where, ": truncated .npy header");
    for (int i = 0; i < 4; ++i) header_length |= size_t(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    offset = 12;
  }
  LADDER_CHECK_USAGE(offset + header_length <= bytes.size(), where, ": truncated .npy header");
  const std::string header = bytes.substr(offset, header_length);
  const std::string descr = header_value(header, "descr", where);
  int element = 0;
  if (descr.rfind("'<f8'", 0) == 0) element = 8;
  else if (descr.rfind("'<f4'", 0) == 0) element = 4;
  LADDER_CHECK_USAGE(element != 0, where, ": dtype ", descr.substr(0, descr.find(',')),
                     " is not supported (little-endian float32 or float64)");
  const bool fortran = header_value(header, "fortran_order", where).rfind("True", 0) == 0;
  std::string shape_text = header_value(header, "shape", where);
  LADDER_CHECK_USAGE(!shape_text.empty() && shape_text[0] == '(', where, ": the .npy header's shape is unreadable");
  shape_text = shape_text.substr(1, shape_text.find(')') - 1);
  NpyArray array;
  int64_t count = 1;
  for (size_t begin = 0; begin < shape_text.size();) {
    const size_t end = std::min(shape_text.find(',', begin), shape_text.size());
    const std::string part = shape_text.substr(begin, end - begin);
    if (part.find_first_not_of(' ') != std::string::npos) {
      const int64_t extent = std::stoll(part);
      LADDER_CHECK_USAGE(extent >= 0 && extent <= (int64_t{1} << 20), where, ": shape extent ", extent);
      array.shape.push_back(extent);
      count *= extent;
    }
    begin = end + 1;
  }
  const size_t data = offset + header_length;
  LADDER_CHECK_USAGE(bytes.size() - data == static_cast<size_t>(count) * element, where, ": ", bytes.size() - data,
                     " data bytes for ", count, " values of ", element, " bytes");
  std::vector<double> stored(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    if (element == 8) {
      std::memcpy(&stored[i], bytes.data() + data + 8 * i, 8);
    } else {
      float value;
      std::memcpy(&value, bytes.data() + data + 4 * i, 4);
      stored[i] = value;
    }
  }
  array.values = stored;
  if (fortran && array.shape.size() == 2) {  // column-major (D0, D1) → row-major
    const int64_t rows = array.shape[0], cols = array.shape[1];
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) array.values[r * cols + c] = stored[c * rows + r];
  }
  return array;
}

}  // namespace

bool is_npz_path(const std::string& path) {
  return path.size() > 4 && path.compare(path.size() - 4, 4, ".npz") == 0;
}

NpzStatistics read_npz_statistics(const std::string& path) {
  int error = 0;
  ZipArchive archive(zip_open(path.c_str(), ZIP_RDONLY, &error));
  if (!archive) {
    zip_error_t detail;
    zip_error_init_with_code(&detail, error);
    const std::string reason = zip_error_strerror(&detail);
    zip_error_fini(&detail);
    throw UsageError(path + ": cannot read pytorch-fid statistics (" + reason + ")");
  }
  const NpyArray mu = parse_npy(read_member(archive.get(), path, "mu.npy"), path + " mu");
  const NpyArray sigma = parse_npy(read_member(archive.get(), path, "sigma.npy"), path + " sigma");
  LADDER_CHECK_USAGE(mu.shape.size() == 1 && mu.shape[0] >= 1, path, ": mu must be one vector (D)");
  const int64_t d = mu.shape[0];
  LADDER_CHECK_USAGE(sigma.shape.size() == 2 && sigma.shape[0] == d && sigma.shape[1] == d, path, ": sigma must be (",
                     d, ", ", d, ") to match mu");
  NpzStatistics statistics;
  statistics.dims = static_cast<int>(d);
  statistics.mu = mu.values;
  statistics.sigma = sigma.values;
  return statistics;
}

}  // namespace ladder::io
