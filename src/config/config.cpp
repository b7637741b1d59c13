// Why this file exists: reading, overriding and validating the INI config with
// Boost.Program_options. Every key is declared once in kKeys (name, default, help); the
// parser, the `--help` text and the resolved config.ini all come from that table.
#include "config/config.h"

#include <boost/program_options.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>
#include <utility>

#include "core/check.h"
#include "data/intensity.h"

namespace po = boost::program_options;

namespace ladder {
namespace {

struct KeySpec {
  const char* name;
  const char* default_value;
  const char* help;
};

// The canonical key order; config.ini and --help follow it.
const KeySpec kKeys[] = {
    {"run.dir", "runs/default", "run directory (config.ini, metrics.jsonl, samples/)"},
    {"run.seed", "0", "seed of every random stream"},
    {"run.device", "auto", "auto | cpu | cuda"},
    {"run.log_every", "10", "optimizer steps between metrics lines"},
    {"run.sample_every", "100", "steps between sample grids (0: start and end only)"},
    {"run.val_every", "0", "steps between validations, when data.val_store or data.val_images is set (0: at the end of each rung only)"},
    {"run.eval_every", "0", "steps between FID/KID evaluations, when eval.count > 0 (0: at the end of each rung only)"},
    {"model.kind", "autoencoder_kl", "autoencoder_kl (stage 1) | diffusion_unet (stage 2: trains on a latent store made by ladder encode)"},
    {"model.in_channels", "3", "image channels"},
    {"model.channels", "128,256,512,512", "channels per level"},
    {"model.res_blocks", "2", "ResBlocks per level"},
    {"model.attention_levels", "none", "none, or one 0/1 per level"},
    {"model.mid_attention", "false", "mid block (ResBlock, attention, ResBlock)"},
    {"model.head_channels", "8", "diffusion UNet: channels per attention head, one value or one per level (0 where a level has no attention; the mid block uses the last)"},
    {"model.latent_channels", "4", "latent channels"},
    {"model.norm_groups", "32", "GroupNorm groups (must divide every channel count)"},
    {"model.norm_eps", "1e-6", "GroupNorm epsilon"},
    {"data.store", "", "HDF5 image store (ladder pack) or a foreign HDF5 file; for a diffusion UNet a latent store (ladder encode) (required)"},
    {"data.dataset", "", "foreign file: its (N, H, W, C) or (N, C, H, W) dataset of uint8, uint16, float16 or float32; empty: a ladder store"},
    {"data.layout", "auto", "layout of a foreign dataset: auto (whichever its shape allows) | nhwc (N, H, W, C) | nchw (N, C, H, W)"},
    {"data.intensity", "auto", "stored values to model inputs in -1..1, as MONAI's ScaleIntensityRange(b_min=-1, b_max=1, clip=True): window:A,B | percentile:P,Q (each image's percentiles) | minmax (percentile:0,100) | auto (uint8: x/127.5 - 1; else the store's stated range, the uint16 range, or minmax for floats)"},
    {"data.partitions", "auto", "image i is in partition i mod P; rank r of W holds the partitions = r (mod W), and every global batch draws batch / P images from each, so every world size that divides P trains on the same batches (P must divide train.batch; auto: train.batch)"},
    {"data.flip", "true", "random horizontal flips"},
    {"data.prefetch", "4", "micro-batches prepared ahead (ring slots)"},
    {"data.loader_threads", "1", "threads assembling micro-batches"},
    {"data.val_store", "", "validation store, of data.store's kind (image or latent store); empty: none"},
    {"data.val_images", "0", "validate on the last N images of data.store instead (never trained on); 0: none"},
    {"train.batch", "32", "effective (global) batch per optimizer step"},
    {"train.micro_batch", "auto", "per rank per micro-step, per rung; auto: on GPUs the largest divisor of batch / world that fits (probed), on the CPU batch / world"},
    {"train.lr", "1e-4", "peak learning rate (cosine to 0 within each rung)"},
    {"train.warmup_images", "0", "images of linear warmup at the start of the run"},
    {"train.betas", "0.9,0.999", "AdamW betas"},
    {"train.weight_decay", "0.01", "AdamW decoupled weight decay (not on norms and biases)"},
    {"train.grad_clip", "1.0", "global gradient-norm clip (0: off)"},
    {"train.kl_weight", "1e-6", "weight of the KL term"},
    {"train.precision", "auto", "auto (GPU: bf16, CPU: fp32) | fp32 | bf16 | fp16 (dynamic loss scaling)"},
    {"train.zero_stage", "2", "ZeRO stage: 0 replicates the optimizer state; 1 shards master weights and moments; 2 also the gradients"},
    {"train.bucket_mb", "25", "ZeRO gradient bucket size in MiB (reduced as the backward completes each)"},
    {"train.init_from", "", "start from these weights (a checkpoint directory) with fresh optimizer state; names and shapes must match"},
    {"train.recompute", "none", "none | blocks | auto per rung: recompute ResBlock insides in the backward (auto: blocks when a micro-batch does not fit on the GPU without; none on the CPU)"},
    {"stages.resolutions", "256,512,1024", "the resolution ladder"},
    {"stages.images", "100000", "images trained per rung"},
    {"stages.lr_scale", "1", "learning-rate multiplier per rung"},
    {"stages.reset_optimizer", "false", "reset Adam moments at the start of each rung"},
    {"diffusion.timesteps", "1000", "T, the diffusion steps of training"},
    {"diffusion.schedule", "linear_beta", "linear_beta | scaled_linear_beta | cosine"},
    {"diffusion.beta_start", "1e-4", "first beta (linear schedules)"},
    {"diffusion.beta_end", "2e-2", "last beta (linear schedules)"},
    {"diffusion.prediction", "epsilon", "epsilon | v_prediction | sample"},
    {"diffusion.snr_gamma", "0", "Min-SNR-gamma loss weighting (0: off; 5 is the paper's)"},
    {"diffusion.noise_offset", "0", "offset noise: + offset * N(0, 1) per image and channel (0: off)"},
    {"diffusion.clip_sample", "true", "sampling: clamp the predicted x0 to within ±1 (MONAI's default; false for latents of std 1)"},
    {"ema.decay", "0", "EMA of the weights, ema = decay * ema + (1 - decay) * w after every step (0: off; e.g. 0.9999)"},
    {"adversarial.weight", "0", "autoencoder: weight of the PatchGAN adversarial loss (0: off; MONAI's LDM tutorial: 0.01)"},
    {"adversarial.start_step", "0", "the adversarial loss and the discriminator's training begin after this step (a warm-up on the other terms)"},
    {"adversarial.criterion", "least_squares", "least_squares | hinge | bce (MONAI PatchAdversarialLoss)"},
    {"adversarial.lr", "5e-4", "the discriminator's AdamW learning rate (constant; no weight decay)"},
    {"adversarial.betas", "0.9,0.999", "the discriminator's AdamW betas"},
    {"adversarial.layers", "3", "PatchDiscriminator num_layers_d (images must be divisible by 2^layers and at least 2^(layers+1) a side)"},
    {"adversarial.channels", "64", "PatchDiscriminator channels of its first convolution"},
    {"adversarial.norm", "batch", "batch | instance: PatchDiscriminator norm (MONAI's BATCH, whose statistics depend on how a batch is split over ranks and micro-steps, or INSTANCE, which does not)"},
    {"perceptual.weight", "0", "autoencoder: weight of the LPIPS perceptual loss (0: off; MONAI's LDM tutorial: 0.001)"},
    {"perceptual.network", "alex", "alex | vgg: LPIPS feature network"},
    {"perceptual.weights", "", "safetensors of the LPIPS network and its linear layers, with the lpips package's names (README)"},
    {"eval.count", "0", "images scored by FID and KID during training (0: off): stage 1, reconstructions of the first N training images; stage 2, N samples"},
    {"eval.reference", "", "what they are scored against: an image store (its level at the rung's resolution; features cached beside it), a feature file (/features) or pytorch-fid statistics (.npz, FID only); empty: the originals (stage 1 only)"},
    {"eval.mode", "pytorch_fid", "pytorch_fid | tf1: InceptionV3 input (tf1: torch-fidelity's and the LDM paper's)"},
    {"eval.weights", "", "InceptionV3 weights: safetensors with pytorch-fid's names (launch/fid_weights.py converts pytorch-fid's release), or random, random:SEED (a sanity check, not comparable with papers); required when eval.count > 0"},
    {"eval.sampler", "ddim", "stage 2: ddim | ddpm, for the evaluated samples"},
    {"eval.steps", "50", "stage 2: sampling steps of the evaluated samples"},
    {"checkpoint.every", "0", "steps between checkpoints (0: only at the end of each rung and of the run)"},
    {"checkpoint.every_minutes", "0", "minutes between checkpoints (0: off; with checkpoint.every, whichever comes first)"},
    {"checkpoint.keep", "3", "newest complete checkpoints kept (older ones deleted once a newer one committed)"},
    {"log.tensorboard", "true", "TensorBoard event files in run.dir/tb (every metric, sample grids, the config)"},
    {"log.progress", "auto", "auto | redraw | lines: the progress line redrawn in place, or one line per log interval (auto: redraw when stdout is a terminal, which mpirun's is not)"},
    {"comm.backend", "auto", "auto | nccl | mpi"},
    {"comm.timeout_s", "300", "seconds before a stuck collective fails the run"},
};

po::options_description make_description() {
  po::options_description description("config keys");
  for (const KeySpec& key : kKeys)
    description.add_options()(key.name, po::value<std::string>()->default_value(key.default_value),
                              key.help);
  return description;
}

// Flags may repeat (the last one wins, as with argparse), so each collects a list.
po::options_description make_flag_description() {
  po::options_description description("config flags");
  for (const KeySpec& key : kKeys)
    description.add_options()(key.name, po::value<std::vector<std::string>>(), key.help);
  return description;
}

// One raw value and where it came from, for error messages; and what the file said, when a
// flag overrode it (per-rung lists follow the file's resolutions).
struct RawValue {
  std::string text;
  std::string source;
  std::string file_text;  // empty when the file does not set the key
};

// Text without the spaces and tabs around it, as a config file's value (or list item) is read.
std::string trimmed(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

class ValueReader {
 public:
  explicit ValueReader(std::map<std::string, RawValue> values) : values_(std::move(values)) {}

  const RawValue& raw(const std::string& key) const { return values_.at(key); }
  const std::string& text(const std::string& key) const { return raw(key).text; }

  [[noreturn]] void fail(const std::string& key, const std::string& why) const {
    const RawValue& value = raw(key);
    throw UsageError(detail::concat("config: ", key, " = '", value.text, "' (", value.source,
                                    "): ", why));
  }

  double number(const std::string& key, const std::string& text) const {
    errno = 0;
    char* end = nullptr;
    double parsed = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(parsed))
      fail(key, detail::concat("'", text, "' is not a number"));
    return parsed;
  }
  int64_t integer(const std::string& key, const std::string& text) const {
    errno = 0;
    char* end = nullptr;
    long long parsed = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0)
      fail(key, detail::concat("'", text, "' is not an integer"));
    return parsed;
  }
  bool boolean(const std::string& key, const std::string& text) const {
    if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
    if (text == "false" || text == "0" || text == "no" || text == "off") return false;
    fail(key, detail::concat("'", text, "' is not a boolean (true/false)"));
  }
  // Comma-separated items of any text, trimmed (no checks: list() reports bad items).
  static std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> items;
    std::stringstream stream(text);
    for (std::string item; std::getline(stream, item, ',');) items.push_back(trimmed(item));
    return items;
  }
  std::vector<std::string> list(const std::string& key) const {
    const std::vector<std::string> items = text(key).empty() ? std::vector<std::string>{} : split(text(key));
    for (const std::string& item : items)
      if (item.empty()) fail(key, "empty item in list");
    if (items.empty()) fail(key, "empty list");
    return items;
  }

  double number(const std::string& key) const { return number(key, text(key)); }
  int64_t integer(const std::string& key) const { return integer(key, text(key)); }
  bool boolean(const std::string& key) const { return boolean(key, text(key)); }
  // A value checked for its lower bound, as an int: above 2^30 it is an error, not a wrap.
  int to_int(const std::string& key, int64_t value) const {
    if (value > (1 << 30)) fail(key, "is too large (at most 2^30)");
    return static_cast<int>(value);
  }
  // AdamW's "beta1,beta2", each in [0, 1).
  std::pair<double, double> betas(const std::string& key) const {
    const std::vector<std::string> items = list(key);
    if (items.size() != 2) fail(key, "needs two values: beta1,beta2");
    const double beta1 = number(key, items[0]), beta2 = number(key, items[1]);
    if (beta1 < 0 || beta1 >= 1 || beta2 < 0 || beta2 >= 1) fail(key, "each beta must be in [0, 1)");
    return {beta1, beta2};
  }
  int positive_int(const std::string& key) const {
    int64_t value = integer(key);
    if (value < 1 || value > (1 << 30)) fail(key, "must be a positive integer");
    return static_cast<int>(value);
  }
  std::string choice(const std::string& key, std::initializer_list<const char*> allowed) const {
    std::string options;
    for (const char* option : allowed) {
      if (text(key) == option) return text(key);
      options += options.empty() ? option : detail::concat(" | ", option);
    }
    fail(key, "must be one of " + options);
  }

  // Per-rung lists: one value for every rung, or exactly one per rung. When a flag replaced
  // the file's stages.resolutions, a list the file gives per file rung follows its
  // resolution: rung R takes the value the file gave R (a config error when it gave none).
  template <class T, class Parse>
  std::vector<T> per_rung(const std::string& key, int rungs, Parse parse) const {
    std::vector<std::string> items = list(key);
    const RawValue& resolutions = raw("stages.resolutions");
    const bool from_file = raw(key).source != "default" && raw(key).source.rfind("flag", 0) != 0;
    if (key != "stages.resolutions" && items.size() > 1 && from_file && resolutions.source.rfind("flag", 0) == 0 &&
        !resolutions.file_text.empty()) {
      const std::vector<std::string> file_rungs = split(resolutions.file_text);
      if (items.size() == file_rungs.size()) {
        std::vector<T> values;
        for (const std::string& resolution : list("stages.resolutions")) {
          auto found = std::find(file_rungs.begin(), file_rungs.end(), resolution);
          if (found == file_rungs.end())
            fail(key, detail::concat("gives values for the file's resolutions ", resolutions.file_text,
                                     ", none for resolution ", resolution, " (", resolutions.source, ")"));
          values.push_back(parse(items[static_cast<size_t>(found - file_rungs.begin())]));
        }
        return values;
      }
    }
    if (items.size() != 1 && static_cast<int>(items.size()) != rungs)
      fail(key, detail::concat("needs one value or one per rung (", rungs, " rungs), got ",
                               items.size()));
    std::vector<T> values;
    for (int rung = 0; rung < rungs; ++rung) values.push_back(parse(items[items.size() == 1 ? 0 : rung]));
    return values;
  }

 private:
  std::map<std::string, RawValue> values_;
};

// Boost's error messages substitute the option's name or the offending line into templates
// such as "unrecognised option '%canonical_option%'" and never return when that text holds a
// placeholder itself (found by fuzzing: an INI key, a line or a flag like "a%invalid_line%").
// No key has a '%', so names and lines without '=' reach Boost with '%' shown as '?'; values
// (after '=') are untouched, and Boost never quotes them (every option is a plain string).
std::string without_placeholders(std::string text) {
  std::replace(text.begin(), text.end(), '%', '?');
  return text;
}
std::string config_text_for_boost(std::istream& file) {
  std::string text, line;
  while (std::getline(file, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // a file with CRLF line ends
    const size_t equals = line.find('=');
    const size_t name_end = equals == std::string::npos ? line.size() : equals;
    text += without_placeholders(line.substr(0, name_end)) + line.substr(name_end) + "\n";
  }
  return text;
}

std::map<std::string, RawValue> read_raw_values(const std::string& config_path,
                                                const std::vector<std::string>& flags) {
  po::options_description description = make_description();
  po::variables_map flag_values, file_values;
  std::vector<std::string> arguments = flags;
  for (std::string& argument : arguments)
    if (argument.rfind("-", 0) == 0) argument = without_placeholders(argument);
  try {
    po::store(po::command_line_parser(arguments).options(make_flag_description()).run(), flag_values);
  } catch (const po::error& e) {
    throw UsageError(detail::concat("config flags: ", e.what()));
  }
  if (!config_path.empty()) {
    std::ifstream file(config_path);
    LADDER_CHECK_USAGE(file.good(), "config: cannot open '", config_path, "'");
    std::istringstream text(config_text_for_boost(file));
    try {
      po::store(po::parse_config_file(text, description, /*allow_unregistered=*/false),
                file_values);
    } catch (const po::error& e) {
      throw UsageError(detail::concat(config_path, ": ", e.what()));
    }
  }
  std::map<std::string, RawValue> values;
  for (const KeySpec& key : kKeys) {
    const po::variable_value& flag = flag_values[key.name];
    const po::variable_value& file = file_values[key.name];
    const std::string in_file = !file.empty() && !file.defaulted() ? file.as<std::string>() : "";
    if (!flag.empty())
      values[key.name] = {trimmed(flag.as<std::vector<std::string>>().back()),
                          detail::concat("flag --", key.name), in_file};
    else if (!in_file.empty())
      values[key.name] = {in_file, config_path, in_file};
    else
      values[key.name] = {key.default_value, "default", ""};
    // Values are one line of text that config.ini can hold: a control character (a NUL from a
    // flag) or a '#' would not survive the resolved config.ini that every run directory keeps
    // and a resume reads.
    const std::string& text = values[key.name].text;
    for (size_t i = 0; i < text.size(); ++i) {
      const unsigned char byte = static_cast<unsigned char>(text[i]);
      if (byte == '#')  // a value never holds one in a file: it begins a comment there
        throw UsageError(detail::concat("config: ", key.name, " (", values[key.name].source,
                                        "): contains '#', which config.ini would read as a comment"));
      if (byte < 0x20 || byte == 0x7f) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", byte);
        throw UsageError(detail::concat("config: ", key.name, " (", values[key.name].source,
                                        "): contains the control character ", hex, " at byte ", i,
                                        "; values are one line of text"));
      }
    }
  }
  return values;
}

void validate(const Config& config, const ValueReader& reader) {
  const ModelConfig& model = config.model;
  int levels = static_cast<int>(model.channels.size());
  for (int channels : model.channels)
    if (channels % model.norm_groups != 0)
      reader.fail("model.channels", detail::concat(channels, " channels are not divisible by ",
                                                   "model.norm_groups = ", model.norm_groups));
  if (static_cast<int>(model.attention_levels.size()) != levels)
    reader.fail("model.attention_levels",
                detail::concat("needs one value per level (", levels, " levels)"));
  int downsampling = 1 << (levels - 1);
  for (int resolution : config.stages.resolutions)
    if (resolution % downsampling != 0)
      reader.fail("stages.resolutions",
                  detail::concat(resolution, " is not divisible by the model's downsampling ",
                                 downsampling));
#ifndef LADDER_WITH_CUDA
  if (config.run.device == "cuda")
    reader.fail("run.device", "this build has no CUDA backend (configure with LADDER_CUDA=ON)");
#endif
  if (config.run.device == "cpu" && config.train.precision != "auto" &&
      config.train.precision != "fp32")
    reader.fail("train.precision", "the CPU trains in fp32 (bf16/fp16 need run.device = cuda)");
}

}  // namespace

Config load_config(const std::string& config_path, const std::vector<std::string>& flags) {
  ValueReader r(read_raw_values(config_path, flags));
  Config c;

  c.run.dir = r.text("run.dir");
  if (c.run.dir.empty()) r.fail("run.dir", "must not be empty");
  int64_t seed = r.integer("run.seed");
  if (seed < 0) r.fail("run.seed", "must be >= 0");
  c.run.seed = static_cast<uint64_t>(seed);
  c.run.device = r.choice("run.device", {"auto", "cpu", "cuda"});
  c.run.log_every = r.positive_int("run.log_every");
  int64_t sample_every = r.integer("run.sample_every");
  if (sample_every < 0) r.fail("run.sample_every", "must be >= 0");
  c.run.sample_every = r.to_int("run.sample_every", sample_every);
  const int64_t val_every = r.integer("run.val_every");
  if (val_every < 0) r.fail("run.val_every", "must be >= 0");
  c.run.val_every = r.to_int("run.val_every", val_every);
  const int64_t eval_every = r.integer("run.eval_every");
  if (eval_every < 0) r.fail("run.eval_every", "must be >= 0");
  c.run.eval_every = r.to_int("run.eval_every", eval_every);

  c.model.kind = r.choice("model.kind", {"autoencoder_kl", "diffusion_unet"});
  c.model.in_channels = r.positive_int("model.in_channels");
  for (const std::string& item : r.list("model.channels")) {
    int64_t channels = r.integer("model.channels", item);
    if (channels < 1) r.fail("model.channels", "channel counts must be positive");
    c.model.channels.push_back(r.to_int("model.channels", channels));
  }
  c.model.res_blocks = r.positive_int("model.res_blocks");
  if (r.text("model.attention_levels") == "none")
    c.model.attention_levels.assign(c.model.channels.size(), false);
  else
    for (const std::string& item : r.list("model.attention_levels"))
      c.model.attention_levels.push_back(r.boolean("model.attention_levels", item));
  c.model.mid_attention = r.boolean("model.mid_attention");
  {
    const std::vector<std::string> items = r.list("model.head_channels");
    if (items.size() != 1 && items.size() != c.model.channels.size())
      r.fail("model.head_channels", detail::concat("needs one value or one per level (",
                                                   c.model.channels.size(), " levels)"));
    for (size_t level = 0; level < c.model.channels.size(); ++level) {
      const int64_t value = r.integer("model.head_channels", items[items.size() == 1 ? 0 : level]);
      if (value < 0) r.fail("model.head_channels", "must be >= 0");
      c.model.head_channels.push_back(r.to_int("model.head_channels", value));
    }
  }
  c.model.latent_channels = r.positive_int("model.latent_channels");
  c.model.norm_groups = r.positive_int("model.norm_groups");
  c.model.norm_eps = r.number("model.norm_eps");
  if (c.model.norm_eps <= 0) r.fail("model.norm_eps", "must be > 0");

  c.data.store = r.text("data.store");  // required by `train`; checked there
  c.data.dataset = r.text("data.dataset");
  c.data.layout = r.choice("data.layout", {"auto", "nhwc", "nchw"});
  c.data.intensity = r.text("data.intensity");
  data::parse_intensity(c.data.intensity);  // UsageError naming the key when it is not one
  c.data.flip = r.boolean("data.flip");
  if (const std::string partitions = r.text("data.partitions"); partitions != "auto") {
    c.data.partitions = r.integer("data.partitions", partitions);
    if (c.data.partitions < 1) r.fail("data.partitions", "must be auto or a positive integer");
  }
  c.data.prefetch = r.positive_int("data.prefetch");
  c.data.loader_threads = r.positive_int("data.loader_threads");
  c.data.val_store = r.text("data.val_store");
  c.data.val_images = r.integer("data.val_images");
  if (c.data.val_images < 0) r.fail("data.val_images", "must be >= 0 (0: none)");
  if (c.data.val_images > 0 && !c.data.val_store.empty())
    r.fail("data.val_images", "give data.val_store or data.val_images, not both");

  c.stages.resolutions = r.per_rung<int>("stages.resolutions",
                                         static_cast<int>(r.list("stages.resolutions").size()),
                                         [&](const std::string& s) {
                                           int64_t v = r.integer("stages.resolutions", s);
                                           if (v < 1 || v > 65536)
                                             r.fail("stages.resolutions", "resolutions must be in 1..65536");
                                           return static_cast<int>(v);
                                         });
  int rungs = c.stages.rungs();
  c.stages.images = r.per_rung<int64_t>("stages.images", rungs, [&](const std::string& s) {
    int64_t v = r.integer("stages.images", s);
    if (v < 1) r.fail("stages.images", "image counts must be >= 1");
    return v;
  });
  c.stages.lr_scale = r.per_rung<double>("stages.lr_scale", rungs, [&](const std::string& s) {
    double v = r.number("stages.lr_scale", s);
    if (v < 0) r.fail("stages.lr_scale", "must be >= 0");
    return v;
  });
  c.stages.reset_optimizer = r.per_rung<bool>(
      "stages.reset_optimizer", rungs,
      [&](const std::string& s) { return r.boolean("stages.reset_optimizer", s); });

  c.train.batch = r.positive_int("train.batch");
  if (c.data.partitions > 0 && c.train.batch % c.data.partitions != 0)
    r.fail("data.partitions", detail::concat("must divide train.batch = ", c.train.batch,
                                             " (every global batch draws alike from every partition)"));
  c.train.micro_batch = r.per_rung<int>("train.micro_batch", rungs, [&](const std::string& s) {
    if (s == "auto") return 0;
    int64_t v = r.integer("train.micro_batch", s);
    if (v < 1) r.fail("train.micro_batch", "must be auto or a positive integer");
    return r.to_int("train.micro_batch", v);
  });
  c.train.lr = r.number("train.lr");
  if (c.train.lr <= 0) r.fail("train.lr", "must be > 0");
  c.train.warmup_images = r.number("train.warmup_images");
  if (c.train.warmup_images < 0) r.fail("train.warmup_images", "must be >= 0");
  std::tie(c.train.beta1, c.train.beta2) = r.betas("train.betas");
  c.train.weight_decay = r.number("train.weight_decay");
  if (c.train.weight_decay < 0) r.fail("train.weight_decay", "must be >= 0");
  c.train.grad_clip = r.number("train.grad_clip");
  if (c.train.grad_clip < 0) r.fail("train.grad_clip", "must be >= 0 (0 disables)");
  c.train.kl_weight = r.number("train.kl_weight");
  if (c.train.kl_weight < 0) r.fail("train.kl_weight", "must be >= 0");
  c.train.precision = r.choice("train.precision", {"auto", "fp32", "bf16", "fp16"});
  int64_t zero_stage = r.integer("train.zero_stage");
  if (zero_stage < 0 || zero_stage > 2) r.fail("train.zero_stage", "must be 0, 1 or 2");
  c.train.zero_stage = static_cast<int>(zero_stage);
  c.train.bucket_mb = r.number("train.bucket_mb");
  if (c.train.bucket_mb <= 0) r.fail("train.bucket_mb", "must be > 0");
  c.train.init_from = r.text("train.init_from");
  c.train.recompute = r.per_rung<std::string>("train.recompute", rungs, [&](const std::string& s) {
    if (s != "none" && s != "blocks" && s != "auto")
      r.fail("train.recompute", "each value must be none, blocks or auto");
    return s;
  });

  c.diffusion.timesteps = r.positive_int("diffusion.timesteps");
  c.diffusion.schedule = r.choice("diffusion.schedule", {"linear_beta", "scaled_linear_beta", "cosine"});
  c.diffusion.beta_start = r.number("diffusion.beta_start");
  c.diffusion.beta_end = r.number("diffusion.beta_end");
  if (!(c.diffusion.beta_start > 0 && c.diffusion.beta_start <= c.diffusion.beta_end && c.diffusion.beta_end < 1))
    r.fail("diffusion.beta_end", "needs 0 < diffusion.beta_start <= diffusion.beta_end < 1");
  c.diffusion.prediction = r.choice("diffusion.prediction", {"epsilon", "v_prediction", "sample"});
  c.diffusion.snr_gamma = r.number("diffusion.snr_gamma");
  if (c.diffusion.snr_gamma < 0) r.fail("diffusion.snr_gamma", "must be >= 0 (0: off)");
  c.diffusion.noise_offset = r.number("diffusion.noise_offset");
  if (c.diffusion.noise_offset < 0) r.fail("diffusion.noise_offset", "must be >= 0 (0: off)");
  c.diffusion.clip_sample = r.boolean("diffusion.clip_sample");
  c.ema.decay = r.number("ema.decay");
  if (!(c.ema.decay >= 0 && c.ema.decay < 1)) r.fail("ema.decay", "must be in [0, 1) (0: off)");

  c.adversarial.weight = r.number("adversarial.weight");
  if (c.adversarial.weight < 0) r.fail("adversarial.weight", "must be >= 0 (0: off)");
  c.adversarial.start_step = r.integer("adversarial.start_step");
  if (c.adversarial.start_step < 0) r.fail("adversarial.start_step", "must be >= 0");
  c.adversarial.criterion = r.choice("adversarial.criterion", {"least_squares", "hinge", "bce"});
  c.adversarial.lr = r.number("adversarial.lr");
  if (c.adversarial.lr <= 0) r.fail("adversarial.lr", "must be > 0");
  std::tie(c.adversarial.beta1, c.adversarial.beta2) = r.betas("adversarial.betas");
  c.adversarial.layers = r.positive_int("adversarial.layers");
  if (c.adversarial.layers > 8) r.fail("adversarial.layers", "must be in 1..8");
  c.adversarial.channels = r.positive_int("adversarial.channels");
  if (c.adversarial.channels > 4096) r.fail("adversarial.channels", "must be in 1..4096");
  c.adversarial.norm = r.choice("adversarial.norm", {"batch", "instance"});
  c.perceptual.weight = r.number("perceptual.weight");
  if (c.perceptual.weight < 0) r.fail("perceptual.weight", "must be >= 0 (0: off)");
  c.perceptual.network = r.choice("perceptual.network", {"alex", "vgg"});
  c.perceptual.weights = r.text("perceptual.weights");
  if (c.perceptual.enabled() && c.perceptual.weights.empty())
    r.fail("perceptual.weights", "is required when perceptual.weight > 0 (a safetensors file of the LPIPS network; README)");
  if ((c.adversarial.enabled() || c.perceptual.enabled()) && c.model.kind != "autoencoder_kl")
    r.fail(c.adversarial.enabled() ? "adversarial.weight" : "perceptual.weight",
           "applies to the autoencoder (model.kind = autoencoder_kl) only");

  c.eval.count = r.integer("eval.count");
  if (c.eval.count < 0) r.fail("eval.count", "must be >= 0 (0: off)");
  if (c.eval.count == 1) r.fail("eval.count", "must be at least 2 (a covariance needs two images)");
  c.eval.reference = r.text("eval.reference");
  c.eval.mode = r.choice("eval.mode", {"pytorch_fid", "tf1"});
  c.eval.weights = r.text("eval.weights");
  if (c.eval.enabled() && c.eval.weights.empty())
    r.fail("eval.weights", "is required when eval.count > 0 (InceptionV3 weights: python3 launch/fid_weights.py "
                           "makes them from pytorch-fid's release; random for a sanity check)");
  if (c.eval.enabled() && c.eval.reference.empty() && c.model.kind == "diffusion_unet")
    r.fail("eval.reference", "is required when eval.count > 0 for a diffusion UNet (the image store its latents "
                             "came from, a feature file or .npz statistics)");
  c.eval.sampler = r.choice("eval.sampler", {"ddim", "ddpm"});
  c.eval.steps = r.positive_int("eval.steps");

  int64_t every = r.integer("checkpoint.every");
  if (every < 0) r.fail("checkpoint.every", "must be >= 0");
  c.checkpoint.every = r.to_int("checkpoint.every", every);
  c.checkpoint.every_minutes = r.number("checkpoint.every_minutes");
  if (c.checkpoint.every_minutes < 0) r.fail("checkpoint.every_minutes", "must be >= 0 (0: off)");
  c.checkpoint.keep = r.positive_int("checkpoint.keep");
  c.log.tensorboard = r.boolean("log.tensorboard");
  c.log.progress = r.choice("log.progress", {"auto", "redraw", "lines"});
  c.comm.backend = r.choice("comm.backend", {"auto", "nccl", "mpi"});
  c.comm.timeout_s = r.number("comm.timeout_s");
  if (c.comm.timeout_s <= 0) r.fail("comm.timeout_s", "must be > 0");

  validate(c, r);
  return c;
}

int micro_batch_for_rung(const Config& config, int rung, int world) {
  int configured = config.train.micro_batch.at(rung);
  int64_t per_rank = config.train.batch / world;
  LADDER_CHECK_USAGE(config.train.batch % world == 0, "config: train.batch = ",
                     config.train.batch, " is not divisible by the world size ", world);
  int micro = configured == 0 ? static_cast<int>(per_rank) : configured;
  LADDER_CHECK_USAGE(per_rank % micro == 0, "config: train.micro_batch = ", micro, " (rung ",
                     rung, "): batch ", config.train.batch, " is not a multiple of micro_batch ",
                     micro, " x world ", world);
  return micro;
}

int accumulation_for_rung(const Config& config, int rung, int world) {
  return static_cast<int>(config.train.batch / world / micro_batch_for_rung(config, rung, world));
}

std::string config_help() {
  std::ostringstream os;
  std::string section;
  for (const KeySpec& key : kKeys) {
    std::string name = key.name;
    std::string key_section = name.substr(0, name.find('.'));
    if (key_section != section) {
      section = key_section;
      os << "  [" << section << "]\n";
    }
    std::string flag = "    --" + name + " " + (key.default_value[0] ? key.default_value : "''");
    if (flag.size() < 44) flag.resize(44, ' ');
    os << flag << "  " << key.help << "\n";
  }
  return os.str();
}

namespace {
template <class T>
std::string join(const std::vector<T>& items) {
  std::ostringstream os;
  for (size_t i = 0; i < items.size(); ++i) os << (i ? "," : "") << items[i];
  return os.str();
}
std::string join_bools(const std::vector<bool>& items) {
  std::ostringstream os;
  for (size_t i = 0; i < items.size(); ++i) os << (i ? "," : "") << (items[i] ? "true" : "false");
  return os.str();
}
std::string join_micro(const std::vector<int>& items) {
  std::ostringstream os;
  for (size_t i = 0; i < items.size(); ++i)
    os << (i ? "," : "") << (items[i] == 0 ? std::string("auto") : std::to_string(items[i]));
  return os.str();
}
}  // namespace

std::vector<std::pair<std::string, std::string>> Config::key_values() const {
  auto number = [](double value) {
    std::ostringstream os;
    os.precision(17);
    os << value;
    return os.str();
  };
  auto boolean = [](bool value) { return std::string(value ? "true" : "false"); };
  std::vector<std::string> lr_scale_text;
  for (double value : stages.lr_scale) lr_scale_text.push_back(number(value));
  return {
      {"run.dir", run.dir},
      {"run.seed", std::to_string(run.seed)},
      {"run.device", run.device},
      {"run.log_every", std::to_string(run.log_every)},
      {"run.sample_every", std::to_string(run.sample_every)},
      {"run.val_every", std::to_string(run.val_every)},
      {"run.eval_every", std::to_string(run.eval_every)},
      {"model.kind", model.kind},
      {"model.in_channels", std::to_string(model.in_channels)},
      {"model.channels", join(model.channels)},
      {"model.res_blocks", std::to_string(model.res_blocks)},
      {"model.attention_levels", join_bools(model.attention_levels)},
      {"model.mid_attention", boolean(model.mid_attention)},
      {"model.head_channels", join(model.head_channels)},
      {"model.latent_channels", std::to_string(model.latent_channels)},
      {"model.norm_groups", std::to_string(model.norm_groups)},
      {"model.norm_eps", number(model.norm_eps)},
      {"data.store", data.store},
      {"data.dataset", data.dataset},
      {"data.layout", data.layout},
      {"data.intensity", data.intensity},
      {"data.partitions", data.partitions == 0 ? std::string("auto") : std::to_string(data.partitions)},
      {"data.flip", boolean(data.flip)},
      {"data.prefetch", std::to_string(data.prefetch)},
      {"data.loader_threads", std::to_string(data.loader_threads)},
      {"data.val_store", data.val_store},
      {"data.val_images", std::to_string(data.val_images)},
      {"train.batch", std::to_string(train.batch)},
      {"train.micro_batch", join_micro(train.micro_batch)},
      {"train.lr", number(train.lr)},
      {"train.warmup_images", number(train.warmup_images)},
      {"train.betas", number(train.beta1) + "," + number(train.beta2)},
      {"train.weight_decay", number(train.weight_decay)},
      {"train.grad_clip", number(train.grad_clip)},
      {"train.kl_weight", number(train.kl_weight)},
      {"train.precision", train.precision},
      {"train.zero_stage", std::to_string(train.zero_stage)},
      {"train.bucket_mb", number(train.bucket_mb)},
      {"train.init_from", train.init_from},
      {"train.recompute", join(train.recompute)},
      {"stages.resolutions", join(stages.resolutions)},
      {"stages.images", join(stages.images)},
      {"stages.lr_scale", join(lr_scale_text)},
      {"stages.reset_optimizer", join_bools(stages.reset_optimizer)},
      {"diffusion.timesteps", std::to_string(diffusion.timesteps)},
      {"diffusion.schedule", diffusion.schedule},
      {"diffusion.beta_start", number(diffusion.beta_start)},
      {"diffusion.beta_end", number(diffusion.beta_end)},
      {"diffusion.prediction", diffusion.prediction},
      {"diffusion.snr_gamma", number(diffusion.snr_gamma)},
      {"diffusion.noise_offset", number(diffusion.noise_offset)},
      {"diffusion.clip_sample", boolean(diffusion.clip_sample)},
      {"ema.decay", number(ema.decay)},
      {"adversarial.weight", number(adversarial.weight)},
      {"adversarial.start_step", std::to_string(adversarial.start_step)},
      {"adversarial.criterion", adversarial.criterion},
      {"adversarial.lr", number(adversarial.lr)},
      {"adversarial.betas", number(adversarial.beta1) + "," + number(adversarial.beta2)},
      {"adversarial.layers", std::to_string(adversarial.layers)},
      {"adversarial.channels", std::to_string(adversarial.channels)},
      {"adversarial.norm", adversarial.norm},
      {"perceptual.weight", number(perceptual.weight)},
      {"perceptual.network", perceptual.network},
      {"perceptual.weights", perceptual.weights},
      {"eval.count", std::to_string(eval.count)},
      {"eval.reference", eval.reference},
      {"eval.mode", eval.mode},
      {"eval.weights", eval.weights},
      {"eval.sampler", eval.sampler},
      {"eval.steps", std::to_string(eval.steps)},
      {"checkpoint.every", std::to_string(checkpoint.every)},
      {"checkpoint.every_minutes", number(checkpoint.every_minutes)},
      {"checkpoint.keep", std::to_string(checkpoint.keep)},
      {"log.tensorboard", boolean(log.tensorboard)},
      {"log.progress", log.progress},
      {"comm.backend", comm.backend},
      {"comm.timeout_s", number(comm.timeout_s)},
  };
}

std::string Config::to_ini() const {
  std::ostringstream os;
  os << "# resolved by ladder: every key, defaults included\n";
  std::string section;
  for (const auto& [key, value] : key_values()) {
    const std::string key_section = key.substr(0, key.find('.'));
    if (key_section != section) {
      os << (section.empty() ? "" : "\n") << "[" << key_section << "]\n";
      section = key_section;
    }
    os << key.substr(key.find('.') + 1) << " = " << value << "\n";
  }
  return os.str();
}

}  // namespace ladder
