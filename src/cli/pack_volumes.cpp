// Why this file exists: the volume path of `ladder pack` (src/cli/pack_volumes.h).
#include "cli/pack_volumes.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "cli/file_list.h"
#include "core/check.h"
#include "core/fp16.h"
#include "core/log.h"
#include "data/intensity.h"
#include "io/image_decode.h"
#include "io/image_store.h"

namespace ladder {
namespace {

namespace fs = std::filesystem;

// One slice at every level, as the store's values: levels[l] is (R_l, R_l) of `type`.
std::vector<std::vector<uint8_t>> slice_levels(const std::vector<float>& square, int64_t side,
                                               const VolumePackOptions& options, data::PixelType type,
                                               const std::optional<data::IntensityTransform>& window,
                                               std::string& problem) {
  const int top = options.levels.back();
  std::vector<float> resized(static_cast<size_t>(top) * top);
  io::area_resize_floats(square.data(), static_cast<int>(side), 1, top, resized.data());
  // The top level in the store's type; the lower ones its box filters, as for photos.
  std::vector<std::vector<uint8_t>> levels(options.levels.size());
  std::vector<uint8_t>& stored = levels.back();
  stored.resize(resized.size() * static_cast<size_t>(data::pixel_type_bytes(type)));
  if (window) {
    std::vector<float> unit(resized.size());
    window->apply(reinterpret_cast<const uint8_t*>(resized.data()), static_cast<int64_t>(resized.size()), unit.data());
    for (size_t i = 0; i < unit.size(); ++i) stored[i] = data::unit_to_byte(unit[i]);
  } else {
    for (size_t i = 0; i < resized.size(); ++i) {
      const float v = resized[i];
      if (type == data::PixelType::kFloat32) {
        std::memcpy(stored.data() + 4 * i, &v, 4);
      } else if (type == data::PixelType::kFloat16) {
        if (std::abs(v) > 65504.0f) {
          problem = detail::concat("value ", v, " does not fit float16 (use --pixel-type float32)");
          return {};
        }
        const uint16_t bits = float_to_half_bits(v);
        std::memcpy(stored.data() + 2 * i, &bits, 2);
      } else {
        const float rounded = std::nearbyint(v);
        if (rounded < 0 || rounded > 65535 || rounded != v) {
          problem = detail::concat("value ", v, " is not an integer in 0..65535 (use --pixel-type float32)");
          return {};
        }
        const auto u = static_cast<uint16_t>(rounded);
        std::memcpy(stored.data() + 2 * i, &u, 2);
      }
    }
  }
  for (size_t l = 0; l + 1 < options.levels.size(); ++l) {
    levels[l].resize(static_cast<size_t>(options.levels[l]) * options.levels[l] * data::pixel_type_bytes(type));
    io::box_downsample_values(type, stored.data(), top, top, 1, top / options.levels[l], levels[l].data());
  }
  return levels;
}

}  // namespace

int pack_volumes(const VolumePackOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const int top = options.levels.back();
  const data::PixelType type = options.window ? data::PixelType::kUint8 : options.type;
  std::optional<data::IntensityTransform> window;
  if (options.window)
    window.emplace(data::IntensitySpec{data::IntensitySpec::Kind::kWindow, options.window->first, options.window->second},
                   data::PixelType::kFloat32);
  const std::vector<std::string> files = list_files(options.dir, "--nifti");
  std::optional<io::ImageStoreWriter> writer;  // opened at the first slice: none, no store
  std::vector<std::string> skipped;            // "name (reason)"
  int64_t volumes = 0, resized = 0, squared = 0;
  for (const std::string& name : files) {
    if (!io::is_nifti_name(name)) {
      skipped.push_back(name + " (not .nii or .nii.gz)");
      continue;
    }
    io::Volume volume;
    try {
      volume = io::read_nifti((fs::path(options.dir) / name).string());
    } catch (const Error& e) {
      skipped.push_back(name + " (" + e.what() + ")");
      continue;
    }
    const int64_t count = options.axis == io::SliceAxis::kSagittal ? volume.nx
                          : options.axis == io::SliceAxis::kCoronal ? volume.ny : volume.nz;
    const float fill = *std::min_element(volume.voxels.begin(), volume.voxels.end());
    const std::vector<int64_t> chosen = io::chosen_slices(count, options.slices);
    std::vector<std::vector<std::vector<uint8_t>>> packed(chosen.size());
    std::vector<std::string> problems(chosen.size());
    int64_t height = 0, width = 0, side = 0;
#pragma omp parallel for schedule(dynamic) firstprivate(height, width, side)
    for (size_t k = 0; k < chosen.size(); ++k) {
      const std::vector<float> slice = io::extract_slice(volume, options.axis, chosen[k], height, width);
      const std::vector<float> square = io::make_square(slice, height, width, options.pad, fill, side);
      if (side < top) {
        problems[k] = detail::concat("its ", width, "x", height, " slices are smaller than ", top, " px");
        continue;
      }
      packed[k] = slice_levels(square, side, options, type, window, problems[k]);
    }
    const auto problem = std::find_if(problems.begin(), problems.end(), [](const std::string& p) { return !p.empty(); });
    if (problem != problems.end()) {
      skipped.push_back(name + " (" + *problem + ")");
      continue;
    }
    if (!writer) writer.emplace(options.out, 1, options.levels, type);
    for (size_t k = 0; k < chosen.size(); ++k) {
      std::vector<const uint8_t*> pixels;
      for (const std::vector<uint8_t>& level : packed[k]) pixels.push_back(level.data());
      writer->append(pixels, detail::concat(name, ":", io::slice_axis_name(options.axis), ":", chosen[k]));
    }
    const int64_t h = options.axis == io::SliceAxis::kAxial ? volume.ny : volume.nz;
    const int64_t w = options.axis == io::SliceAxis::kSagittal ? volume.ny : volume.nx;
    squared += h != w;
    resized += (options.pad ? std::max(h, w) : std::min(h, w)) != top;
    ++volumes;
  }
  if (!skipped.empty()) {
    std::ostringstream os;
    os << "pack: skipped " << skipped.size() << " of " << files.size() << " files\n";
    for (size_t i = 0; i < skipped.size() && i < 20; ++i) os << "    " << skipped[i] << "\n";
    if (skipped.size() > 20) os << "    ... and " << skipped.size() - 20 << " more\n";
    std::fputs(os.str().c_str(), stderr);
  }
  if (!writer)
    throw Error(detail::concat("pack: no volume could be packed from ", options.dir, " (", files.size(), " files, ",
                               skipped.size(), " skipped", skipped.empty() ? "" : ": " + skipped.front(), ")"));
  const int64_t slices = writer->count();
  writer->finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log_info("pack: ", slices, " ", io::slice_axis_name(options.axis), " slices of ", volumes, " volumes as ",
           data::pixel_type_name(type), options.window ? " (window baked in)" : "", " -> ", options.out, " in ",
           seconds, " s; ", squared, " volumes' slices made square by ", options.pad ? "padding" : "cropping", ", ",
           resized, " area-resized to ", top, " px");
  return 0;
}

}  // namespace ladder
