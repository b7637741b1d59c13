// Why this file exists: the checkpoint protocol of Checkpointer (see the header).
#include "train/checkpointer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "core/check.h"
#include "core/clock.h"
#include "core/context.h"
#include "core/format.h"
#include "core/log.h"

namespace ladder {
namespace {

// 64-bit values travel through a double all-gather as two exact 32-bit halves.
void encode(uint64_t value, double* out) {
  out[0] = static_cast<double>(value >> 32);
  out[1] = static_cast<double>(value & 0xffffffffu);
}
uint64_t decode(const double* in) {
  return (static_cast<uint64_t>(in[0]) << 32) | static_cast<uint64_t>(in[1]);
}

}  // namespace

Checkpointer::Checkpointer(const Config& config, Communicator& comm, const ParamStore& params,
                           const ShardLayout& layout, FlatMemory& memory, Optimizer& optimizer,
                           WeightAverage* average, data::BufferPinner pin, BufferSource buffers)
    : config_(config),
      comm_(comm),
      params_(params),
      layout_(layout),
      memory_(memory),
      optimizer_(optimizer),
      average_(average),
      buffers_(std::move(buffers)),
      directory_(config.run.dir),
      ranges_(layout.owned_ranges(comm.rank())),
      staging_((average ? 4 : 3) * layout.owned_count()) {
  if (pin) staging_pin_ = pin(staging_.data(), staging_.bytes());
  if (const char* pause = std::getenv("LADDER_TEST_CHECKPOINT_PAUSE_S")) pause_s_ = std::atof(pause);
  last_start_time_ = now_seconds();
}

Checkpointer::~Checkpointer() {
  if (writer_.joinable()) writer_.join();
}

bool Checkpointer::after_step(const io::TrainingState& state, bool scheduled) {
  const bool minutes_due = comm_.rank() == 0 && config_.checkpoint.every_minutes > 0 &&
                           now_seconds() - last_start_time_ >= 60 * config_.checkpoint.every_minutes;
  double flags[3] = {ProcessContext::get().stop_signal() != 0 ? 1.0 : 0.0, minutes_due ? 1.0 : 0.0,
                     !in_flight_ || written_.load(std::memory_order_acquire) ? 1.0 : 0.0};
  comm_.all_reduce_sum(flags, 3, DType::kF64);  // the same decisions on every rank
  const bool stop = flags[0] > 0;
  if (in_flight_ && flags[2] == comm_.world()) complete();
  if (!scheduled && flags[1] == 0 && !stop) return false;
  if (in_flight_) complete();  // at most one in flight
  start(state);
  if (stop) {
    complete();
    comm_.barrier();  // every rank returns after the commit
  }
  return stop;
}

void Checkpointer::finish(const io::TrainingState& state) {
  if (in_flight_) complete();
  double missing = 0;  // rank 0 has committed everything by now; it decides for all
  if (comm_.rank() == 0) {
    const std::vector<int64_t> steps = directory_.complete_steps();
    missing = std::find(steps.begin(), steps.end(), state.step) == steps.end() ? 1 : 0;
  }
  comm_.broadcast(&missing, 1, DType::kF64, 0);
  if (missing > 0) {
    start(state);
    complete();
  }
  comm_.barrier();
}

void Checkpointer::stage() {
  const int64_t n = layout_.owned_count();
  float* master = staging_.data();
  int64_t out = 0;
  for (const Range& range : ranges_) {
    memory_.download(memory_.values() + range.begin, master + out, range.size());
    out += range.size();
  }
  optimizer_.download_moments(ranges_, master + n, master + 2 * n);
  if (average_) average_->download(master + 3 * n);
  {
    std::lock_guard<std::mutex> lock(staged_mutex_);
    staged_ = true;
  }
  staged_signal_.notify_all();
}

void Checkpointer::wait_until_staged() {
  if (!in_flight_) return;
  const double wait_start = now_seconds();
  std::unique_lock<std::mutex> lock(staged_mutex_);
  staged_signal_.wait(lock, [this] { return staged_; });
  last_stall_s_ += now_seconds() - wait_start;
}

void Checkpointer::start(const io::TrainingState& state) {
  const double stage_start = now_seconds();
  last_start_time_ = stage_start;
  const int64_t n = layout_.owned_count();
  float* master = staging_.data();
  float* exp_avg = master + n;
  float* exp_avg_sq = exp_avg + n;
  const float* ema = average_ ? exp_avg_sq + n : nullptr;
  staged_ = false;
  // Device memory is copied now (the writer thread has no CUDA context of its own); host
  // memory by the writer, while the next step computes.
  const bool stage_in_writer = !memory_.on_device();
  if (!stage_in_writer) stage();
  last_stall_s_ = now_seconds() - stage_start;

  const std::string directory = directory_.temporary_path(state.step);
  std::filesystem::create_directories(directory);
  const std::string path = (std::filesystem::path(directory) /
                            io::shard_file_name(comm_.rank(), comm_.world())).string();
  pending_ = state;
  // Taken now: the next step's forward passes move them.
  pending_buffers_ = comm_.rank() == 0 && buffers_ ? buffers_() : std::vector<ModelBuffer>{};
  in_flight_ = true;
  written_.store(false, std::memory_order_relaxed);
  write_error_ = nullptr;
  const int rank = comm_.rank(), world = comm_.world();
  writer_ = std::thread([this, path, rank, world, master, exp_avg, exp_avg_sq, ema, stage_in_writer] {
    // One thread: the background copy must not add an OpenMP team beside the training's.
    omp_set_num_threads(1);
    try {
      const double write_start = now_seconds();
      if (stage_in_writer) stage();
      written_file_ = io::write_shard_file(path, rank, world, pending_.step, ranges_,
                                           {master, exp_avg, exp_avg_sq, ema});
      write_seconds_ = now_seconds() - write_start;
      if (pause_s_ > 0)  // tests: a window in which the checkpoint is in flight
        std::this_thread::sleep_for(std::chrono::duration<double>(pause_s_));
    } catch (...) {
      write_error_ = std::current_exception();
    }
    {  // never leave the loop waiting for a copy that failed
      std::lock_guard<std::mutex> lock(staged_mutex_);
      staged_ = true;
    }
    staged_signal_.notify_all();
    written_.store(true, std::memory_order_release);
  });
}

void Checkpointer::complete() {
  wait_until_staged();
  writer_.join();
  in_flight_ = false;
  if (write_error_) std::rethrow_exception(write_error_);
  const int world = comm_.world();
  double mine[4];
  encode(static_cast<uint64_t>(written_file_.bytes), mine);
  encode(written_file_.xxh3, mine + 2);
  std::vector<double> all(static_cast<size_t>(4 * world));
  comm_.all_gather(mine, all.data(), 4, DType::kF64);
  last_write_s_ = write_seconds_;
  if (comm_.rank() != 0) return;
  std::vector<io::WrittenFile> files(static_cast<size_t>(world));
  int64_t total = 0;
  for (int r = 0; r < world; ++r) {
    files[r].bytes = static_cast<int64_t>(decode(&all[4 * r]));
    files[r].xxh3 = decode(&all[4 * r + 2]);
    total += files[r].bytes;
  }
  directory_.commit(manifest_for(pending_, files), config_.checkpoint.keep);
  log_info("checkpoint ", directory_.step_path(pending_.step), ": ", human_bytes(total), " in ",
           world, world == 1 ? " shard" : " shards", " (training waited ", last_stall_s_,
           " s for staging; rank 0 staged and wrote its shard in ", write_seconds_, " s)");
}

io::Manifest Checkpointer::manifest_for(const io::TrainingState& state,
                                        const std::vector<io::WrittenFile>& files) const {
  io::Manifest m;
  m.step = state.step;
  m.world = comm_.world();
  m.zero_stage = config_.train.zero_stage;
  m.count = params_.count();
  m.padded_count = layout_.padded_count();
  m.state = state;
  m.buffers = pending_buffers_;
  m.ladder_version = LADDER_VERSION;
  for (const ParamEntry& entry : params_.entries())
    m.params.push_back({entry.name, entry.shape, entry.offset, entry.numel});
  for (int r = 0; r < m.world; ++r) {
    io::ShardRecord shard;
    shard.rank = r;
    shard.file = io::shard_file_name(r, m.world);
    shard.ranges = layout_.owned_ranges(r);
    shard.bytes = files[r].bytes;
    shard.xxh3 = files[r].xxh3;
    m.shards.push_back(shard);
  }
  for (const auto& [key, value] : config_.key_values()) m.config[key] = value;
  return m;
}

}  // namespace ladder
