// Why this file exists: `ladder pack` (BRIEF §5), which builds a format-1 HDF5 image
// store from a folder of PNG/JPEG files or from the deterministic synthetic generator. One
// rule for every store: the top (largest) level is the source image area-resized, and each
// lower level is box_downsample of the top, so the levels agree exactly. Inputs are decoded
// in parallel but appended in sorted order, so the same inputs always give the same store.
#include "cli/pack_command.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>

#include "cli/file_list.h"
#include "cli/pack_volumes.h"
#include "core/check.h"
#include "core/log.h"
#include "data/intensity.h"
#include "data/synthetic_images.h"
#include "io/image_decode.h"
#include "io/image_store.h"

namespace ladder {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct PackOptions {
  std::string images_dir;
  VolumePackOptions volumes;  // --nifti: volumes.dir
  std::optional<int64_t> synthetic;  // image count
  std::string out;
  std::vector<int> levels;  // ascending; levels.back() is the top
  uint64_t seed = 0;
  int channels = 3;
  int threads = 0;  // 0: one per core
};

int64_t parse_integer(const std::string& flag, const std::string& text) {
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  LADDER_CHECK_USAGE(used == text.size() && !text.empty(), "pack: ", flag,
                     ": expected an integer, got '", text, "'");
  return value;
}

std::vector<int> parse_levels(const std::string& text) {
  std::vector<int> levels;
  std::stringstream list(text);
  std::string item;
  while (std::getline(list, item, ',')) {
    const int64_t level = parse_integer("--levels", item);
    LADDER_CHECK_USAGE(level >= 1 && level <= 65536, "pack: --levels: ", level,
                       " is not a resolution in [1, 65536]");
    levels.push_back(static_cast<int>(level));
  }
  LADDER_CHECK_USAGE(!levels.empty() && text.back() != ',', "pack: --levels: expected a list like "
                     "256,512,1024, got '", text, "'");
  std::sort(levels.begin(), levels.end());
  for (size_t i = 1; i < levels.size(); ++i)
    LADDER_CHECK_USAGE(levels[i] != levels[i - 1], "pack: --levels: ", levels[i], " given twice");
  const int top = levels.back();
  for (int level : levels)
    LADDER_CHECK_USAGE(top % level == 0, "pack: --levels: ", level, " does not divide ", top);
  return levels;
}

PackOptions parse_options(const std::vector<std::string>& args) {
  PackOptions options;
  bool have_levels = false, have_seed = false, have_volume_flag = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i], value;
    const size_t eq = flag.find('=');
    const bool inline_value = flag.rfind("--", 0) == 0 && eq != std::string::npos;
    if (inline_value) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    have_volume_flag |= flag == "--axis" || flag == "--slices" || flag == "--square" || flag == "--window" ||
                        flag == "--pixel-type";
    auto take_value = [&]() -> std::string {
      if (inline_value) return value;
      LADDER_CHECK_USAGE(i + 1 < args.size(), "pack: ", flag, " needs a value");
      return args[++i];
    };
    if (flag == "--nifti") {
      options.volumes.dir = take_value();
      LADDER_CHECK_USAGE(!options.volumes.dir.empty(), "pack: --nifti needs a folder");
    } else if (flag == "--axis") {
      options.volumes.axis = io::parse_slice_axis(take_value());
    } else if (flag == "--slices") {
      options.volumes.slices = io::parse_slice_selection(take_value());
    } else if (flag == "--square") {
      const std::string how = take_value();
      LADDER_CHECK_USAGE(how == "pad" || how == "crop", "pack: --square ", how, ": expected pad or crop");
      options.volumes.pad = how == "pad";
    } else if (flag == "--window") {
      const std::string window = take_value();
      try {
        const data::IntensitySpec spec = data::parse_intensity("window:" + window);
        options.volumes.window = std::make_pair(spec.low, spec.high);
      } catch (const UsageError&) {
        throw UsageError("pack: --window " + window + ": expected LOW,HIGH, two numbers with LOW < HIGH");
      }
    } else if (flag == "--pixel-type") {
      const std::string name = take_value();
      LADDER_CHECK_USAGE(data::parse_pixel_type(name, options.volumes.type) && name != "uint8",
                         "pack: --pixel-type ", name, ": expected float32, float16 or uint16 (uint8: --window)");
    } else if (flag == "--images") {
      options.images_dir = take_value();
      LADDER_CHECK_USAGE(!options.images_dir.empty(), "pack: --images needs a folder");
    } else if (flag == "--synthetic") {
      const int64_t count = parse_integer(flag, take_value());
      LADDER_CHECK_USAGE(count >= 1, "pack: --synthetic: the image count must be at least 1, got ",
                         count);
      options.synthetic = count;
    } else if (flag == "--out") {
      options.out = take_value();
      LADDER_CHECK_USAGE(!options.out.empty(), "pack: --out needs a file name");
    } else if (flag == "--levels") {
      options.levels = parse_levels(take_value());
      have_levels = true;
    } else if (flag == "--seed") {
      const std::string text = take_value();
      size_t used = 0;
      try {
        if (!text.empty() && text[0] != '-') options.seed = std::stoull(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      LADDER_CHECK_USAGE(used == text.size() && !text.empty(),
                         "pack: --seed: expected a non-negative integer, got '", text, "'");
      have_seed = true;
    } else if (flag == "--channels") {
      const int64_t channels = parse_integer(flag, take_value());
      LADDER_CHECK_USAGE(channels == 1 || channels == 3 || channels == 4,
                         "pack: --channels must be 1, 3 or 4, got ", channels);
      options.channels = static_cast<int>(channels);
    } else if (flag == "--threads") {
      const int64_t threads = parse_integer(flag, take_value());
      LADDER_CHECK_USAGE(threads >= 1 && threads <= 1024, "pack: --threads must be in [1, 1024], got ",
                         threads);
      options.threads = static_cast<int>(threads);
    } else {
      throw UsageError("pack: unknown option '" + args[i] + "' (see ladder pack --help)");
    }
  }
  const bool folder = !options.images_dir.empty(), synthetic = options.synthetic.has_value(),
             volumes = !options.volumes.dir.empty();
  LADDER_CHECK_USAGE(int(folder) + int(synthetic) + int(volumes) == 1,
                     "pack: give one of --images DIR, --nifti DIR or --synthetic N (see ladder pack --help)");
  LADDER_CHECK_USAGE(!options.out.empty(), "pack: --out S.h5 is required");
  LADDER_CHECK_USAGE(have_levels, "pack: --levels is required, e.g. --levels 256,512,1024");
  LADDER_CHECK_USAGE(!(folder && have_seed), "pack: --seed applies to --synthetic only");
  LADDER_CHECK_USAGE(volumes || !have_volume_flag, "pack: --axis, --slices, --square, --window and --pixel-type "
                     "apply to --nifti only");
  options.volumes.out = options.out;
  options.volumes.levels = options.levels;
  if (options.threads == 0)
    options.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return options;
}

// ---- one input → every level

enum class Outcome { kPacked, kNotImage, kCorrupt, kTooSmall };

struct PackedImage {
  Outcome outcome = Outcome::kPacked;
  std::string name;
  std::string detail;                       // why it was skipped
  std::vector<std::vector<uint8_t>> levels;  // levels[l]: (R_l, R_l, C), as options.levels
};

// top: (T, T, C) with T = levels.back(); the lower levels are box filters of it.
void fill_levels(std::vector<uint8_t> top, const std::vector<int>& levels, int channels,
                 PackedImage& packed) {
  const int side = levels.back();
  packed.levels.resize(levels.size());
  for (size_t l = 0; l + 1 < levels.size(); ++l) {
    packed.levels[l].resize(size_t(levels[l]) * size_t(levels[l]) * size_t(channels));
    io::box_downsample(top.data(), side, side, channels, side / levels[l], packed.levels[l].data());
  }
  packed.levels.back() = std::move(top);
}

PackedImage pack_file(const fs::path& path, const std::string& name, const PackOptions& options) {
  PackedImage packed;
  packed.name = name;
  const int top = options.levels.back();
  try {
    if (io::detect_image_file(path.string()) == io::ImageFileType::kUnknown) {
      packed.outcome = Outcome::kNotImage;
      return packed;
    }
    // Each step only when it changes something: at 1024² every skipped copy is 3 MiB.
    io::Image image = io::decode_image_file(path.string());
    if (std::min(image.height, image.width) < top) {
      packed.outcome = Outcome::kTooSmall;
      packed.detail = std::to_string(image.width) + "x" + std::to_string(image.height);
      return packed;
    }
    if (image.height != image.width) image = io::center_crop_square(image);
    if (image.channels != options.channels) image = io::to_channels(image, options.channels);
    if (image.height != top) image = io::area_resize(image, top);
    fill_levels(std::move(image.pixels), options.levels, options.channels, packed);
  } catch (const std::exception& e) {  // unreadable or corrupt (bad_alloc on absurd headers too)
    packed.outcome = Outcome::kCorrupt;
    packed.detail = e.what();
    packed.levels.clear();
  }
  return packed;
}

PackedImage pack_synthetic(int64_t index, const PackOptions& options) {
  PackedImage packed;
  packed.name = "synthetic:" + std::to_string(options.seed) + ":" + std::to_string(index);
  const int top = options.levels.back();
  std::vector<uint8_t> pixels(size_t(top) * size_t(top) * size_t(options.channels));  // (T, T, C)
  data::render_synthetic_image(options.seed, index, top, options.channels, pixels.data());
  fill_levels(std::move(pixels), options.levels, options.channels, packed);
  return packed;
}

// ---- ordered parallel production

// Runs produce(i) for i in [0, count) on `threads` workers and hands the results to consume
// in index order on the calling thread. At most `window` results exist at once (memory stays
// bounded at 1024²); an exception from produce or consume stops the workers and is rethrown.
class OrderedPipeline {
 public:
  using Produce = std::function<PackedImage(int64_t)>;
  using Consume = std::function<void(PackedImage&&)>;

  OrderedPipeline(int64_t count, int threads, Produce produce)
      : count_(count), window_(std::max<int64_t>(4, 2 * int64_t(threads))),
        produce_(std::move(produce)), slots_(size_t(window_)) {
    for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { work(); });
  }
  ~OrderedPipeline() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    to_workers_.notify_all();
    for (std::thread& worker : workers_) worker.join();
  }
  OrderedPipeline(const OrderedPipeline&) = delete;
  OrderedPipeline& operator=(const OrderedPipeline&) = delete;

  void run(const Consume& consume) {
    for (int64_t i = 0; i < count_; ++i) {
      Slot slot;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        Slot& ready = slots_[size_t(i % window_)];
        to_consumer_.wait(lock, [&] { return ready.value.has_value() || ready.error; });
        slot = std::move(ready);
        ready = Slot();
        ++consumed_;
      }
      to_workers_.notify_all();
      if (slot.error) std::rethrow_exception(slot.error);
      consume(std::move(*slot.value));
    }
  }

 private:
  struct Slot {
    std::optional<PackedImage> value;
    std::exception_ptr error;
  };

  void work() {
    for (;;) {
      int64_t index;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        to_workers_.wait(lock, [&] {
          return stop_ || next_ >= count_ || next_ < consumed_ + window_;
        });
        if (stop_ || next_ >= count_) return;
        index = next_++;
      }
      Slot slot;
      try {
        slot.value = produce_(index);
      } catch (...) {
        slot.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        slots_[size_t(index % window_)] = std::move(slot);
      }
      to_consumer_.notify_one();
    }
  }

  const int64_t count_;
  const int64_t window_;
  const Produce produce_;
  std::mutex mutex_;
  std::condition_variable to_workers_, to_consumer_;
  std::vector<Slot> slots_;  // (window): result of index i at i % window
  int64_t next_ = 0;         // next index to claim
  int64_t consumed_ = 0;     // results handed to consume so far
  bool stop_ = false;
  std::vector<std::thread> workers_;  // last: started after everything above exists
};

// ---- terminal output

// "pack: 120/480 files, 35.2 files/s, ETA 10 s" about once a second on stderr: rewritten in
// place with \r on a terminal, one line each otherwise. Silent for packs under a second.
class Progress {
 public:
  Progress(int64_t total, std::string unit)
      : total_(total), unit_(std::move(unit)), start_(Clock::now()), last_(start_),
        tty_(::isatty(::fileno(stderr)) != 0) {}
  // A pack that fails midway must not leave its error on the end of a \r progress line.
  ~Progress() {
    if (tty_ && printed_ && !ended_) std::fputc('\n', stderr);
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void update(int64_t done) {
    const Clock::time_point now = Clock::now();
    if (now - last_ < std::chrono::seconds(1) && done < total_) return;
    if (done == total_ && !printed_) return;  // finished within the first second
    last_ = now;
    printed_ = true;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? double(done) / elapsed : 0.0;
    const double eta = rate > 0 ? double(total_ - done) / rate : 0.0;
    char line[160];
    std::snprintf(line, sizeof line, "pack: %lld/%lld %s, %.1f %s/s, ETA %.0f s",
                  static_cast<long long>(done), static_cast<long long>(total_), unit_.c_str(), rate,
                  unit_.c_str(), eta);
    ended_ = done == total_;
    if (tty_)
      std::fprintf(stderr, "\r%-70s%s", line, ended_ ? "\n" : "");
    else
      std::fprintf(stderr, "%s\n", line);
    std::fflush(stderr);
  }

 private:
  int64_t total_;
  std::string unit_;
  Clock::time_point start_, last_;
  bool tty_;
  bool printed_ = false;
  bool ended_ = false;
};

struct SkipList {
  struct Entry {
    std::string name, detail;
  };
  std::vector<Entry> not_image, corrupt, too_small;

  int64_t total() const { return int64_t(not_image.size() + corrupt.size() + too_small.size()); }

  void add(const PackedImage& packed) {
    Entry entry{packed.name, packed.detail};
    if (packed.outcome == Outcome::kNotImage) not_image.push_back(std::move(entry));
    if (packed.outcome == Outcome::kCorrupt) corrupt.push_back(std::move(entry));
    if (packed.outcome == Outcome::kTooSmall) too_small.push_back(std::move(entry));
  }

  // "2 not images (a.txt, b.txt), 1 corrupt or unreadable (c.jpg)": 20 names at most.
  std::string summary(int top) const {
    std::ostringstream os;
    int named = 0;
    bool first_group = true;
    auto group = [&](const std::vector<Entry>& entries, const std::string& what) {
      if (entries.empty()) return;
      os << (first_group ? "" : ", ") << entries.size() << " " << what << " (";
      first_group = false;
      for (size_t i = 0; i < entries.size(); ++i) {
        if (named == 20) {
          os << (i ? ", " : "") << "... and " << entries.size() - i << " more";
          break;
        }
        os << (i ? ", " : "") << entries[i].name;
        ++named;
      }
      os << ")";
    };
    group(not_image, not_image.size() == 1 ? "not an image" : "not images");
    group(corrupt, "corrupt or unreadable");
    group(too_small, "smaller than " + std::to_string(top) + " px");
    return os.str();
  }

  // The end-of-pack report on stderr: each reason, then its first 20 files, one a line.
  void report(int64_t files, int top) const {
    if (total() == 0) return;
    std::ostringstream os;
    os << "pack: skipped " << total() << " of " << files << " files\n";
    auto group = [&](const std::vector<Entry>& entries, const std::string& what) {
      if (entries.empty()) return;
      os << "  " << what << ": " << entries.size() << "\n";
      for (size_t i = 0; i < entries.size() && i < 20; ++i)
        os << "    " << entries[i].name
           << (entries[i].detail.empty() ? "" : " (" + entries[i].detail + ")") << "\n";
      if (entries.size() > 20) os << "    ... and " << entries.size() - 20 << " more\n";
    };
    group(not_image, "not PNG or JPEG");
    group(corrupt, "corrupt or unreadable");
    group(too_small, "smaller than " + std::to_string(top) + " px");
    std::fputs(os.str().c_str(), stderr);
    std::fflush(stderr);
  }
};

std::string levels_text(const std::vector<int>& levels) {
  std::string text;
  for (int level : levels) text += (text.empty() ? "" : ",") + std::to_string(level);
  return text;
}

}  // namespace

std::string pack_usage() {
  return "usage: ladder pack --images DIR --out S.h5 --levels 256,512,1024 [--channels 3]\n"
         "       ladder pack --nifti DIR --out S.h5 --levels 128,256 [--axis axial] [--slices all]\n"
         "                   [--square pad|crop] [--window LOW,HIGH | --pixel-type float32]\n"
         "       ladder pack --synthetic N --out S.h5 --levels 32,64 [--seed K] [--channels 3]\n"
         "\n"
         "Builds an HDF5 image store: every level holds every image.\n"
         "The largest level is each image centre-cropped to a square and area-downsampled;\n"
         "each smaller level is a box filter of the largest, so every level must divide it.\n"
         "\n"
         "options:\n"
         "  --images DIR     every PNG and JPEG under DIR, recursively, in sorted path order;\n"
         "                   other files, corrupt files and images smaller than the largest\n"
         "                   level are skipped and listed at the end\n"
         "  --nifti DIR      every .nii and .nii.gz volume under DIR, recursively, in sorted path\n"
         "                   order, as 1-channel 2-D slices (names FILE:AXIS:INDEX); each volume is\n"
         "                   decoded once; unreadable, truncated, 4-D volumes and volumes with NaN\n"
         "                   or infinite voxels are skipped and listed at the end\n"
         "  --axis A         the slices: axial (z = const, default), coronal (y) or sagittal (x)\n"
         "  --slices S       all (default), every:K (every K-th from the first) or middle:N\n"
         "  --square HOW     pad (default: centred on the longer side, filled with the volume's\n"
         "                   minimum) or crop (the centred square of the shorter side)\n"
         "  --window L,H     bake the window L..H into a uint8 store (data.intensity's window:\n"
         "                   clip((x - L) / (H - L) * 2 - 1) to bytes)\n"
         "  --pixel-type T   without a window: float32 (default), float16 or uint16 (format 2)\n"
         "  --synthetic N    N deterministic synthetic images instead (names synthetic:K:i)\n"
         "  --out S.h5       the store; written to S.h5.tmp and renamed once complete\n"
         "  --levels LIST    comma-separated resolutions, e.g. 256,512,1024\n"
         "  --channels C     1 (gray), 3 (RGB, default) or 4 (RGBA)\n"
         "  --seed K         synthetic set to draw (default 0)\n"
         "  --threads T      decoding threads (default: one per core)\n"
         "  --help           this text\n";
}

int pack_command(const std::vector<std::string>& args) {
  for (const std::string& arg : args)
    if (arg == "--help" || arg == "-h") {
      std::cout << pack_usage();
      return 0;
    }
  const PackOptions options = parse_options(args);
  if (!options.volumes.dir.empty()) return pack_volumes(options.volumes);
  const Clock::time_point start = Clock::now();
  const int top = options.levels.back();

  std::vector<std::string> files;
  int64_t count = 0;
  OrderedPipeline::Produce produce;
  if (options.synthetic) {
    count = *options.synthetic;
    produce = [&options](int64_t i) { return pack_synthetic(i, options); };
  } else {
    files = list_files(options.images_dir, "--images");
    count = int64_t(files.size());
    const fs::path root(options.images_dir);
    produce = [&options, &files, root](int64_t i) {
      return pack_file(root / files[size_t(i)], files[size_t(i)], options);
    };
  }

  std::optional<io::ImageStoreWriter> writer;  // opened at the first image: none, no store
  SkipList skipped;
  Progress progress(count, options.synthetic ? "images" : "files");
  int64_t done = 0;
  {
    OrderedPipeline pipeline(count, int(std::min<int64_t>(options.threads, std::max<int64_t>(count, 1))),
                             produce);
    pipeline.run([&](PackedImage&& packed) {
      if (packed.outcome == Outcome::kPacked) {
        if (!writer) writer.emplace(options.out, options.channels, options.levels);
        std::vector<const uint8_t*> pixels;
        for (const std::vector<uint8_t>& level : packed.levels) pixels.push_back(level.data());
        writer->append(pixels, packed.name);
      } else {
        skipped.add(packed);
      }
      progress.update(++done);
    });
  }

  if (!writer) {
    if (count == 0)
      throw Error("pack: no images found under " + options.images_dir + " (it holds no files)");
    throw Error("pack: no images found under " + options.images_dir + " (" +
                std::to_string(skipped.total()) + " files skipped: " + skipped.summary(top) + ")");
  }
  skipped.report(count, top);
  const int64_t packed = writer->count();
  writer->finish();
  writer.reset();

  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::error_code size_error;
  const uintmax_t bytes = fs::file_size(options.out, size_error);
  char figures[160];
  std::snprintf(figures, sizeof figures, "%.1f MiB in %.2f s, %.1f images/s",
                size_error ? 0.0 : double(bytes) / (1024.0 * 1024.0), seconds,
                seconds > 0 ? double(packed) / seconds : 0.0);
  log_info("pack: ", packed, " images at levels ", levels_text(options.levels), " (",
           options.channels, " channels) -> ", options.out, ": ", figures,
           skipped.total() ? " (" + std::to_string(skipped.total()) + " files skipped, listed above)"
                           : std::string());
  return 0;
}

}  // namespace ladder
