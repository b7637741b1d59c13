// Why this file exists: reading and writing feature-set files (io/feature_file.h).
#include "io/feature_file.h"

#include <cstdio>

#include "core/check.h"
#include "io/hdf5.h"

namespace ladder::io {

FeatureSet read_feature_set(const std::string& path) {
  h5::File file = h5::open_file(path);
  LADDER_CHECK_USAGE(h5::is_dataset(file.get(), "features"), path,
                     ": no dataset /features (a feature file holds /features (N, D) float)");
  h5::Dataset dataset(h5::check(H5Dopen2(file.get(), "features", H5P_DEFAULT), path, "cannot open /features"));
  h5::Datatype type(h5::check(H5Dget_type(dataset.get()), path, "/features"));
  LADDER_CHECK_USAGE(H5Tget_class(type.get()) == H5T_FLOAT, path, ": /features is ", h5::describe_type(type.get()),
                     ", not float");
  const std::vector<hsize_t> dims = h5::shape(dataset.get());
  LADDER_CHECK_USAGE(dims.size() == 2 && dims[0] >= 2 && dims[1] >= 1 && dims[1] <= 65536 && dims[0] <= (1ull << 31),
                     path, ": /features has shape ", h5::describe_shape(dims),
                     "; expected (N, D) with N >= 2 images and D <= 65536 features");
  FeatureSet set;
  set.count = static_cast<int64_t>(dims[0]);
  set.dims = static_cast<int>(dims[1]);
  set.values.resize(static_cast<size_t>(dims[0] * dims[1]));
  h5::check(H5Dread(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, set.values.data()), path,
            "cannot read /features");
  h5::read_string_attribute(file.get(), "network", &set.network, path);
  h5::read_string_attribute(file.get(), "mode", &set.mode, path);
  return set;
}

bool is_feature_file(const std::string& path) {
  try {
    h5::File file = h5::open_file(path);
    return h5::is_dataset(file.get(), "features");
  } catch (const Error&) {
    return false;
  }
}

void write_feature_set(const std::string& path, const FeatureSet& set) {
  LADDER_CHECK(set.count >= 0 && set.dims >= 1 && static_cast<int64_t>(set.values.size()) == set.count * set.dims,
               "write_feature_set: ", set.values.size(), " values for ", set.count, " x ", set.dims);
  const std::string temporary = path + ".tmp";
  {
    h5::File file = h5::create_file(temporary);
    h5::write_float_dataset(file.get(), "features",
                            {static_cast<hsize_t>(set.count), static_cast<hsize_t>(set.dims)}, set.values.data(),
                            temporary);
    if (!set.network.empty()) h5::write_string_attribute(file.get(), "network", set.network, temporary);
    if (!set.mode.empty()) h5::write_string_attribute(file.get(), "mode", set.mode, temporary);
    LADDER_CHECK(file.close(), "cannot close ", temporary);
  }
  LADDER_CHECK(std::rename(temporary.c_str(), path.c_str()) == 0, "cannot rename ", temporary, " to ", path);
}

}  // namespace ladder::io
