// Why this file exists: the HDF5 fuzz targets' leak check for ladder's own HDF5 use. Leaks
// of libhdf5's internal blocks are suppressed (lsan.supp: it leaks some on damaged files), so
// a handle ladder forgot to close would go unseen by LeakSanitizer; instead, after each input
// every file, dataset, group, type, space and attribute must be closed again.
#pragma once

#include <hdf5.h>

#include <cstdio>
#include <cstdlib>

namespace ladder::fuzz {

inline void require_hdf5_closed(const char* target) {
  const ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  if (open != 0) {
    std::fprintf(stderr, "%s: ladder left %zd HDF5 objects open after this input\n", target, open);
    std::abort();
  }
}

}  // namespace ladder::fuzz
