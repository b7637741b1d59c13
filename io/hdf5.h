// Why this file exists: the HDF5 C API behind RAII and exceptions. Every hid_t we open is
// owned by a move-only handle that closes it, so no path (success, error, exception) leaks a
// handle or leaves a file open; every negative return becomes a ladder::Error that names the
// file, what we were doing, and HDF5's own innermost reason. HDF5's habit of printing its
// error stack to stderr is switched off once, when the first file is opened or created.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"

#include "data/pixel_type.h"

namespace ladder::io::h5 {

// Owns one hid_t and closes it with Close (H5Fclose, H5Dclose, ...). Move-only.
template <herr_t (*Close)(hid_t)>
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

  // Closes now (errors ignored: used on failure paths and in destructors).
  void reset() noexcept {
    if (id_ >= 0) Close(id_);
    id_ = H5I_INVALID_HID;
  }
  // Closes now and reports whether HDF5 accepted the close (a file's last flush happens here).
  bool close() noexcept {
    if (id_ < 0) return true;
    const herr_t status = Close(std::exchange(id_, H5I_INVALID_HID));
    return status >= 0;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using File = Handle<H5Fclose>;
using Group = Handle<H5Gclose>;
using Dataset = Handle<H5Dclose>;
using Dataspace = Handle<H5Sclose>;
using Datatype = Handle<H5Tclose>;
using Attribute = Handle<H5Aclose>;
using PropList = Handle<H5Pclose>;
using Object = Handle<H5Oclose>;

// The innermost message of HDF5's current error stack (e.g. "truncated file: eof = ...",
// "addr overflow"), or "" when the stack is empty.
std::string last_error();

// Throws Error("<path>: <what...> (HDF5: <innermost reason>)") when status is negative;
// returns status otherwise, so calls can be wrapped inline: check(H5Dopen2(...), path, "...").
[[noreturn]] void fail(const std::string& path, const std::string& what);
template <class T, class... What>
T check(T status, const std::string& path, const What&... what) {
  if (status < 0) fail(path, detail::concat(what...));
  return status;
}

// Opens an existing file read-only (H5F_ACC_RDONLY), with a clear error for a missing path,
// a directory, a file that is not HDF5, and a truncated or damaged one.
File open_file(const std::string& path);
// Creates (or truncates) a file for writing. reproducible: objects created in it (see
// the caller's dataset creation lists too) store no modification times, so equal contents give equal bytes.
File create_file(const std::string& path, bool reproducible = false);

// Whether a link `name` exists below `location` (intermediate groups may be missing).
bool exists(hid_t location, const std::string& name);
// Whether `name` below `location` is a dataset (false when missing or another object).
bool is_dataset(hid_t location, const std::string& name);
// Paths of every dataset in the file, sorted (for "no dataset X; datasets here: ..." errors).
std::vector<std::string> list_datasets(hid_t file);

// "uint8", "int16", "float32", "string", ... for error messages.
std::string describe_type(hid_t type);
bool is_uint8(hid_t type);
bool is_uint64(hid_t type);
// The pixel type a dataset's type holds — uint8, uint16, or IEEE float16 / float32, in either
// byte order; false for any other type.
bool pixel_type_of(hid_t type, data::PixelType* pixel_type);
// The type to read or write values of `pixel_type` in memory (native byte order) and to store
// them in a file (little-endian); float16 is IEEE binary16, as numpy's and h5py's.
Datatype memory_type(data::PixelType pixel_type);
Datatype file_type(data::PixelType pixel_type);

// The dataset's shape (one entry per dimension).
std::vector<hsize_t> shape(hid_t dataset);
// "(10, 16, 16, 3)".
std::string describe_shape(const std::vector<hsize_t>& dims);

// A variable-length UTF-8 string type (h5py's str); the caller owns it.
Datatype vlen_string_type();

// Root or object attributes. read_*_attribute returns false when the attribute is missing;
// throws when it exists with the wrong kind of type.
void write_string_attribute(hid_t object, const std::string& name, const std::string& value,
                            const std::string& path);
void write_int_attribute(hid_t object, const std::string& name, int64_t value,
                         const std::string& path);
void write_double_attribute(hid_t object, const std::string& name, double value,
                            const std::string& path);
bool read_double_attribute(hid_t object, const std::string& name, double* value,
                           const std::string& path);
bool read_string_attribute(hid_t object, const std::string& name, std::string* value,
                           const std::string& path);
bool read_int_attribute(hid_t object, const std::string& name, int64_t* value,
                        const std::string& path);

// Writes a contiguous float32 dataset `name` of shape `dims` from `data` (C order).
void write_float_dataset(hid_t file, const std::string& name, const std::vector<hsize_t>& dims,
                         const float* data, const std::string& path);

// Reads element `index` of a 1-D string dataset (variable-length or fixed).
std::string read_string_element(hid_t dataset, hsize_t index, const std::string& path);

}  // namespace ladder::io::h5
