// Why this file exists: the out-of-line half of io/hdf5.h: error messages built from HDF5's
// error stack, opening files with a clear reason for each way it can fail (and refusing files
// that would make HDF5 load plugins or read other files: docs/SECURITY.md), and the small
// queries (types, shapes, attributes, strings) that the image store repeats.
#include "io/hdf5.h"

#include <algorithm>
#include <filesystem>

namespace ladder::io::h5 {
namespace {

// HDF5 prints its whole error stack to stderr on every failed call unless told not to; we
// report failures ourselves, as one line. The library keeps this setting; we keep nothing.
void silence_library_errors() {
  // Per thread: a thread-safe HDF5 keeps one error stack (and its printing) per thread, and
  // checkpoint shards are written from a background thread.
  thread_local const bool silenced = H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr) >= 0;
  (void)silenced;
}

// Filter plugins are shared libraries HDF5 would load from HDF5_PLUGIN_PATH when a file asks
// for a filter it lacks: a file must not make ladder load code. Process-wide, once.
void disable_plugins() {
  static const bool disabled = H5PLset_loading_state(0) >= 0;
  (void)disabled;
}

// Refuses links that leave the file (external, user-defined) and datasets whose raw data lives
// in other files (external storage): a file must not make ladder read other files.
struct LinkCheck {
  std::string refused;  // the first object refused, with why
};

herr_t check_link(hid_t group, const char* name, const H5L_info_t* info, void* out) {
  auto& check = *static_cast<LinkCheck*>(out);
  if (info->type == H5L_TYPE_EXTERNAL || info->type >= H5L_TYPE_UD_MIN) {
    check.refused = std::string("/") + name + " is an external or user-defined link (a link to another file)";
    return 1;
  }
  if (info->type != H5L_TYPE_HARD || !is_dataset(group, name)) return 0;
  const hid_t dataset = H5Dopen2(group, name, H5P_DEFAULT);
  if (dataset < 0) return 0;  // reported when the dataset is used
  const hid_t create = H5Dget_create_plist(dataset);
  const int external = create >= 0 ? H5Pget_external_count(create) : 0;
  if (create >= 0) H5Pclose(create);
  H5Dclose(dataset);
  if (external > 0) {
    check.refused = std::string("/") + name + " keeps its data in external files";
    return 1;
  }
  return 0;
}

herr_t take_innermost(unsigned n, const H5E_error2_t* error, void* out) {
  if (n == 0 && error != nullptr && error->desc != nullptr)
    *static_cast<std::string*>(out) = error->desc;
  return 0;
}

herr_t collect_dataset(hid_t group, const char* name, const H5L_info_t* info, void* out) {
  if (info->type == H5L_TYPE_HARD && is_dataset(group, name))
    static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

}  // namespace

std::string last_error() {
  std::string message;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_innermost, &message);
  return message;
}

void fail(const std::string& path, const std::string& what) {
  const std::string reason = last_error();
  if (reason.empty()) throw Error(path + ": " + what);
  throw Error(path + ": " + what + " (HDF5: " + reason + ")");
}

File open_file(const std::string& path) {
  silence_library_errors();
  namespace fs = std::filesystem;
  std::error_code ignored;
  const fs::file_status status = fs::status(path, ignored);
  // A missing, foreign or damaged file is bad input (UsageError, exit 2), as the brief's exit
  // codes say; a file that cannot be read at all is a runtime failure.
  if (!fs::exists(status)) throw UsageError(path + ": no such file");
  if (fs::is_directory(status)) throw UsageError(path + ": is a directory, not an HDF5 file");
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 == 0) throw UsageError(path + ": not an HDF5 file");
  check(is_hdf5, path, "cannot read the file");
  disable_plugins();
  const hid_t opened = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (opened < 0) {
    const std::string reason = last_error();
    throw UsageError(path + ": cannot open: truncated or damaged HDF5 file" + (reason.empty() ? "" : " (HDF5: " + reason + ")"));
  }
  File file(opened);
  LinkCheck links;
  const herr_t visited = H5Lvisit(file.get(), H5_INDEX_NAME, H5_ITER_NATIVE, check_link, &links);
  if (!links.refused.empty()) throw UsageError(path + ": " + links.refused + "; ladder reads self-contained files only");
  check(visited, path, "cannot list the file's objects (damaged HDF5 file)");
  return file;
}

File create_file(const std::string& path, bool reproducible) {
  silence_library_errors();
  PropList create(check(H5Pcreate(H5P_FILE_CREATE), path, "file creation properties"));
  if (reproducible) check(H5Pset_obj_track_times(create.get(), false), path, "file creation properties");
  return File(check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, create.get(), H5P_DEFAULT), path,
                    "cannot create the file"));
}

bool exists(hid_t location, const std::string& name) {
  // H5Lexists fails (rather than returning false) when an intermediate group is missing, so
  // walk the path one component at a time.
  if (name.empty() || name == "/") return true;
  size_t end = name.find_first_not_of('/');
  while (end != std::string::npos) {
    end = name.find('/', end);
    const std::string prefix = name.substr(0, end);
    if (H5Lexists(location, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (end != std::string::npos) end = name.find_first_not_of('/', end);
  }
  return true;
}

bool is_dataset(hid_t location, const std::string& name) {
  if (!exists(location, name)) return false;
  Object object(H5Oopen(location, name.c_str(), H5P_DEFAULT));
  return object.valid() && H5Iget_type(object.get()) == H5I_DATASET;
}

std::vector<std::string> list_datasets(hid_t file) {
  std::vector<std::string> names;
  H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, collect_dataset, &names);
  std::sort(names.begin(), names.end());
  return names;
}

std::string describe_type(hid_t type) {
  const size_t bits = H5Tget_size(type) * 8;
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_FLOAT: return "float" + std::to_string(bits);
    case H5T_STRING: return "string";
    case H5T_ENUM: return "enum (e.g. bool)";
    case H5T_COMPOUND: return "compound";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_OPAQUE: return "opaque";
    case H5T_BITFIELD: return "bitfield";
    case H5T_REFERENCE: return "reference";
    default: return "unknown type";
  }
}

bool is_uint8(hid_t type) {
  return H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == 1 &&
         H5Tget_sign(type) == H5T_SGN_NONE;
}

bool is_uint64(hid_t type) {
  return H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == 8 &&
         H5Tget_sign(type) == H5T_SGN_NONE;
}

namespace {

// IEEE binary16 (sign 15, exponent 10..14 biased by 15, mantissa 0..9), as h5py makes it.
Datatype half_type(H5T_order_t order) {
  Datatype type(H5Tcopy(H5T_IEEE_F32LE));
  if (!type.valid() || H5Tset_fields(type.get(), 15, 10, 5, 0, 10) < 0 || H5Tset_size(type.get(), 2) < 0 ||
      H5Tset_ebias(type.get(), 15) < 0 || H5Tset_order(type.get(), order) < 0)
    LADDER_FAIL("HDF5: cannot make a float16 type");
  return type;
}

}  // namespace

bool pixel_type_of(hid_t type, data::PixelType* pixel_type) {
  const size_t size = H5Tget_size(type);
  if (H5Tget_class(type) == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_NONE && (size == 1 || size == 2)) {
    *pixel_type = size == 1 ? data::PixelType::kUint8 : data::PixelType::kUint16;
    return true;
  }
  if (H5Tget_class(type) != H5T_FLOAT) return false;
  size_t sign = 0, exponent_at = 0, exponent_bits = 0, mantissa_at = 0, mantissa_bits = 0;
  if (H5Tget_fields(type, &sign, &exponent_at, &exponent_bits, &mantissa_at, &mantissa_bits) < 0) return false;
  if (size == 2 && sign == 15 && exponent_at == 10 && exponent_bits == 5 && mantissa_at == 0 && mantissa_bits == 10 &&
      H5Tget_ebias(type) == 15) {
    *pixel_type = data::PixelType::kFloat16;
    return true;
  }
  if (size == 4 && sign == 31 && exponent_bits == 8 && mantissa_bits == 23) {
    *pixel_type = data::PixelType::kFloat32;
    return true;
  }
  return false;
}

Datatype memory_type(data::PixelType pixel_type) {
  switch (pixel_type) {
    case data::PixelType::kUint8: return Datatype(H5Tcopy(H5T_NATIVE_UINT8));
    case data::PixelType::kUint16: return Datatype(H5Tcopy(H5T_NATIVE_UINT16));
    case data::PixelType::kFloat16: return half_type(H5T_ORDER_LE);  // x86-64 and aarch64 hosts
    case data::PixelType::kFloat32: return Datatype(H5Tcopy(H5T_NATIVE_FLOAT));
  }
  return Datatype(H5Tcopy(H5T_NATIVE_UINT8));
}

Datatype file_type(data::PixelType pixel_type) {
  switch (pixel_type) {
    case data::PixelType::kUint8: return Datatype(H5Tcopy(H5T_STD_U8LE));
    case data::PixelType::kUint16: return Datatype(H5Tcopy(H5T_STD_U16LE));
    case data::PixelType::kFloat16: return half_type(H5T_ORDER_LE);
    case data::PixelType::kFloat32: return Datatype(H5Tcopy(H5T_IEEE_F32LE));
  }
  return Datatype(H5Tcopy(H5T_STD_U8LE));
}

std::vector<hsize_t> shape(hid_t dataset) {
  Dataspace space(H5Dget_space(dataset));
  if (!space.valid()) return {};
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank <= 0) return {};
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

std::string describe_shape(const std::vector<hsize_t>& dims) {
  std::string text = "(";
  for (size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
  return text + (dims.size() == 1 ? ",)" : ")");
}

Datatype vlen_string_type() {
  Datatype type(H5Tcopy(H5T_C_S1));
  if (!type.valid() || H5Tset_size(type.get(), H5T_VARIABLE) < 0 ||
      H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0)
    throw Error("HDF5: cannot make a string type (" + last_error() + ")");
  return type;
}

void write_string_attribute(hid_t object, const std::string& name, const std::string& value,
                            const std::string& path) {
  Datatype type = vlen_string_type();
  Dataspace space(check(H5Screate(H5S_SCALAR), path, "attribute ", name));
  Attribute attribute(check(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT,
                                       H5P_DEFAULT),
                            path, "cannot create attribute '", name, "'"));
  const char* text = value.c_str();
  check(H5Awrite(attribute.get(), type.get(), &text), path, "cannot write attribute '", name, "'");
}

void write_int_attribute(hid_t object, const std::string& name, int64_t value,
                         const std::string& path) {
  Dataspace space(check(H5Screate(H5S_SCALAR), path, "attribute ", name));
  Attribute attribute(check(H5Acreate2(object, name.c_str(), H5T_STD_I64LE, space.get(),
                                       H5P_DEFAULT, H5P_DEFAULT),
                            path, "cannot create attribute '", name, "'"));
  check(H5Awrite(attribute.get(), H5T_NATIVE_INT64, &value), path, "cannot write attribute '",
        name, "'");
}

namespace {

// Opens attribute `name` holding exactly one value; an invalid handle when it is missing.
Attribute open_single_attribute(hid_t object, const std::string& name, const std::string& path) {
  const htri_t present = check(H5Aexists(object, name.c_str()), path, "cannot query attribute '",
                               name, "'");
  if (present == 0) return Attribute();
  Attribute attribute(check(H5Aopen(object, name.c_str(), H5P_DEFAULT), path,
                            "cannot open attribute '", name, "'"));
  Dataspace space(check(H5Aget_space(attribute.get()), path, "attribute '", name, "'"));
  if (H5Sget_simple_extent_npoints(space.get()) != 1)
    LADDER_FAIL(path, ": attribute '", name, "' holds ",
                H5Sget_simple_extent_npoints(space.get()), " values, expected one");
  return attribute;
}

}  // namespace

bool read_string_attribute(hid_t object, const std::string& name, std::string* value,
                           const std::string& path) {
  Attribute attribute = open_single_attribute(object, name, path);
  if (!attribute.valid()) return false;
  Datatype type(check(H5Aget_type(attribute.get()), path, "attribute '", name, "'"));
  if (H5Tget_class(type.get()) != H5T_STRING)
    LADDER_FAIL(path, ": attribute '", name, "' is ", describe_type(type.get()),
                ", expected a string");
  if (H5Tis_variable_str(type.get()) > 0) {
    Datatype memory = vlen_string_type();
    char* text = nullptr;
    check(H5Aread(attribute.get(), memory.get(), &text), path, "cannot read attribute '", name,
          "'");
    *value = text != nullptr ? text : "";
    Dataspace scalar(H5Screate(H5S_SCALAR));
    H5Dvlen_reclaim(memory.get(), scalar.get(), H5P_DEFAULT, &text);
  } else {
    const size_t size = H5Tget_size(type.get());
    Datatype memory(H5Tcopy(H5T_C_S1));
    H5Tset_size(memory.get(), size);
    std::string buffer(size, '\0');
    check(H5Aread(attribute.get(), memory.get(), buffer.data()), path,
          "cannot read attribute '", name, "'");
    buffer.resize(std::min(buffer.find('\0'), buffer.size()));
    while (!buffer.empty() && buffer.back() == ' ') buffer.pop_back();  // space-padded
    *value = buffer;
  }
  return true;
}

bool read_int_attribute(hid_t object, const std::string& name, int64_t* value,
                        const std::string& path) {
  Attribute attribute = open_single_attribute(object, name, path);
  if (!attribute.valid()) return false;
  Datatype type(check(H5Aget_type(attribute.get()), path, "attribute '", name, "'"));
  if (H5Tget_class(type.get()) != H5T_INTEGER)
    LADDER_FAIL(path, ": attribute '", name, "' is ", describe_type(type.get()),
                ", expected an integer");
  check(H5Aread(attribute.get(), H5T_NATIVE_INT64, value), path, "cannot read attribute '", name,
        "'");
  return true;
}

std::string read_string_element(hid_t dataset, hsize_t index, const std::string& path) {
  Datatype type(check(H5Dget_type(dataset), path, "names"));
  Dataspace file_space(check(H5Dget_space(dataset), path, "names"));
  const hsize_t one = 1;
  check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &index, nullptr, &one, nullptr),
        path, "name ", index);
  Dataspace memory_space(check(H5Screate_simple(1, &one, nullptr), path, "name ", index));
  if (H5Tis_variable_str(type.get()) > 0) {
    Datatype memory = vlen_string_type();
    char* text = nullptr;
    check(H5Dread(dataset, memory.get(), memory_space.get(), file_space.get(), H5P_DEFAULT, &text),
          path, "cannot read name ", index);
    std::string value = text != nullptr ? text : "";
    H5Dvlen_reclaim(memory.get(), memory_space.get(), H5P_DEFAULT, &text);
    return value;
  }
  const size_t size = H5Tget_size(type.get());
  Datatype memory(H5Tcopy(H5T_C_S1));
  H5Tset_size(memory.get(), size);
  std::string buffer(size, '\0');
  check(H5Dread(dataset, memory.get(), memory_space.get(), file_space.get(), H5P_DEFAULT,
                buffer.data()),
        path, "cannot read name ", index);
  buffer.resize(std::min(buffer.find('\0'), buffer.size()));
  return buffer;
}

void write_float_dataset(hid_t file, const std::string& name, const std::vector<hsize_t>& dims,
                         const float* data, const std::string& path) {
  Dataspace space(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), path, name));
  Dataset dataset(check(H5Dcreate2(file, name.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT,
                                   H5P_DEFAULT, H5P_DEFAULT),
                        path, "cannot create ", name));
  check(H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path,
        "cannot write ", name);
}

void write_double_attribute(hid_t object, const std::string& name, double value,
                            const std::string& path) {
  Dataspace space(check(H5Screate(H5S_SCALAR), path, "attribute ", name));
  Attribute attribute(check(H5Acreate2(object, name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT,
                                       H5P_DEFAULT),
                            path, "cannot create attribute ", name));
  check(H5Awrite(attribute.get(), H5T_NATIVE_DOUBLE, &value), path, "cannot write attribute ", name);
}

bool read_double_attribute(hid_t object, const std::string& name, double* value,
                           const std::string& path) {
  if (H5Aexists(object, name.c_str()) <= 0) return false;
  Attribute attribute(check(H5Aopen(object, name.c_str(), H5P_DEFAULT), path, "attribute ", name));
  Datatype type(check(H5Aget_type(attribute.get()), path, "attribute ", name));
  if (H5Tget_class(type.get()) != H5T_FLOAT && H5Tget_class(type.get()) != H5T_INTEGER)
    fail(path, "attribute " + name + " is not a number");
  check(H5Aread(attribute.get(), H5T_NATIVE_DOUBLE, value), path, "cannot read attribute ", name);
  return true;
}

}  // namespace ladder::io::h5
