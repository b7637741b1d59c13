// Why this file exists: `ladder export --checkpoint DIR --out M.safetensors [--dtype ...]`:
// the master weights of a checkpoint written on any number of ranks, gathered from its
// shards, as MONAI's AutoencoderKL or DiffusionModelUNet state dict (names as ladder keeps
// them, convolution weights transposed to (Cout, Cin, kh, kw)). __metadata__ holds the model
// config (ladder's model and diffusion keys as a JSON object, and MONAI's constructor
// arguments), for a UNet the latents' scale_factor, the step and the ladder version, and
// nothing that depends on the world size: the same state exports to the same bytes whichever
// world wrote it. (The discriminator's BatchNorm running statistics are the exception: they
// are rank 0's, moved by rank 0's batches.)
#include "cli/export_command.h"

#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "config/config.h"
#include "core/check.h"
#include "core/format.h"
#include "io/checkpoint_files.h"
#include "io/latent_store.h"
#include "io/safetensors.h"
#include "model/blocks.h"
#include "model/autoencoder_critics.h"
#include "model/torch_layout.h"
#include "train/resume.h"

namespace ladder {
namespace {

// MONAI's DiffusionModelUNet(...) or AutoencoderKL(...) arguments for a ladder model config.
nlohmann::json monai_arguments(const ModelConfig& model) {
  if (model.kind == "diffusion_unet")
    return {{"spatial_dims", 2},
            {"in_channels", model.in_channels},
            {"out_channels", model.in_channels},
            {"num_res_blocks", model.res_blocks},
            {"channels", model.channels},
            {"attention_levels", model.attention_levels},
            {"norm_num_groups", model.norm_groups},
            {"norm_eps", model.norm_eps},
            {"num_head_channels", model.head_channels}};
  return {{"spatial_dims", 2},
          {"in_channels", model.in_channels},
          {"out_channels", model.in_channels},
          {"channels", model.channels},
          {"latent_channels", model.latent_channels},
          {"num_res_blocks", model.res_blocks},
          {"norm_num_groups", model.norm_groups},
          {"norm_eps", model.norm_eps},
          {"attention_levels", model.attention_levels},
          {"with_encoder_nonlocal_attn", model.mid_attention},
          {"with_decoder_nonlocal_attn", model.mid_attention}};
}

// MONAI's PatchDiscriminator(...) arguments for the discriminator of a checkpoint's config.
nlohmann::json discriminator_arguments(const std::map<std::string, std::string>& config) {
  auto integer = [&](const std::string& key) {
    const auto found = config.find(key);
    LADDER_CHECK_USAGE(found != config.end(), "export: the checkpoint's config has no ", key);
    return std::stoi(found->second);  // written by ladder, validated when it trained
  };
  return {{"spatial_dims", 2},
          {"num_layers_d", integer("adversarial.layers")},
          {"channels", integer("adversarial.channels")},
          {"in_channels", integer("model.in_channels")},
          {"out_channels", 1},
          {"norm", config.count("adversarial.norm") && config.at("adversarial.norm") == "instance" ? "INSTANCE" : "BATCH"}};
}

// MONAI's BatchNorm2d buffers for each of the discriminator's BatchNorm layers (the
// parameters "<layer>.weight" of the "<l>.adn.N" layers): the checkpoint's (rank 0's running
// statistics), or, for a checkpoint written before ladder kept them, PyTorch's reset values:
// running mean 0, running variance 1, num_batches_tracked 0. Buffers stay F32 and I64
// whatever --dtype says. Returns which it wrote (kNone: the discriminator has no BatchNorm).
enum class WrittenStatistics { kNone, kCheckpoint, kReset };
WrittenStatistics add_batch_norm_buffers(const io::Manifest& manifest, std::vector<io::SafetensorToWrite>& tensors) {
  std::map<std::string, const ModelBuffer*> saved;
  for (const ModelBuffer& buffer : manifest.buffers) saved[buffer.name] = &buffer;
  const std::string prefix = kDiscriminatorPrefix, norm = ".adn.N.weight";
  bool any = false;
  for (const io::ParamRecord& p : manifest.params) {
    if (p.name.rfind(prefix, 0) != 0 || p.name.size() < norm.size() ||
        p.name.compare(p.name.size() - norm.size(), norm.size(), norm) != 0)
      continue;
    any = true;
    const std::string layer = p.name.substr(0, p.name.size() - std::string(".weight").size());
    const std::string exported = layer.substr(prefix.size());
    struct Slot {
      const char* suffix;
      ModelBuffer::Type type;
      std::vector<int64_t> shape;
      double reset;
    };
    const ModelBuffer::Type f32 = ModelBuffer::Type::kF32, i64 = ModelBuffer::Type::kI64;
    for (const Slot& slot : {Slot{".running_mean", f32, p.shape, 0.0}, Slot{".running_var", f32, p.shape, 1.0},
                             Slot{".num_batches_tracked", i64, {}, 0.0}}) {
      std::vector<double> values(static_cast<size_t>(slot.type == f32 ? p.numel : 1), slot.reset);
      if (!saved.empty()) {
        const auto found = saved.find(layer + slot.suffix);
        LADDER_CHECK_USAGE(found != saved.end() && found->second->type == slot.type && found->second->shape == slot.shape,
                           "export: the checkpoint's buffers hold no ", type_name(slot.type), " ", layer, slot.suffix);
        values = found->second->values;
      }
      if (slot.type == f32) {
        const std::vector<float> floats(values.begin(), values.end());
        tensors.push_back(torch_tensor(exported + slot.suffix, p.shape, floats.data(), "F32"));
        continue;
      }
      const uint64_t count = static_cast<uint64_t>(values[0]);
      std::vector<uint8_t> bytes(8);
      for (int k = 0; k < 8; ++k) bytes[k] = static_cast<uint8_t>(count >> (8 * k));  // little-endian
      tensors.push_back({exported + slot.suffix, "I64", {}, bytes});
    }
  }
  if (!any) return WrittenStatistics::kNone;
  return saved.empty() ? WrittenStatistics::kReset : WrittenStatistics::kCheckpoint;
}

}  // namespace

std::string export_usage() {
  return "usage: ladder export --checkpoint DIR --out M.safetensors [--ema] [--dtype fp32|bf16|fp16] [--discriminator]\n"
         "\n"
         "Writes the weights of a checkpoint (run.dir/checkpoints/step-N, from any number of\n"
         "ranks) as one safetensors file that MONAI's AutoencoderKL (or DiffusionModelUNet, for a\n"
         "diffusion run) loads with strict=True:\n"
         "\n"
         "  import json; from safetensors import safe_open; from safetensors.torch import load_file\n"
         "  from monai.networks.nets import AutoencoderKL\n"
         "  with safe_open(\"M.safetensors\", \"pt\") as f: kwargs = json.loads(f.metadata()[\"monai_arguments\"])\n"
         "  model = AutoencoderKL(**kwargs); model.load_state_dict(load_file(\"M.safetensors\"), strict=True)\n"
         "\n"
         "__metadata__: config (ladder's model and diffusion keys, JSON), monai_arguments (JSON),\n"
         "scale_factor (a UNet: its latent store's), step, weights (master or ema), ladder_version. MONAI's AutoencoderKL\n"
         "attention has one head: an autoencoder with attention at more than 128 channels\n"
         "(ladder's heads are at most 128 channels) exports, with a warning that MONAI's forward\n"
         "will differ there. (The UNet's heads are model.head_channels, as in MONAI.)\n"
         "\n"
         "options:\n"
         "  --checkpoint DIR   a checkpoint directory (verified first)\n"
         "  --out FILE         the safetensors file to write (atomically)\n"
         "  --dtype D          fp32 (default), bf16 or fp16 (round to nearest even)\n"
         "  --ema              the moving average of the weights (a run with ema.decay > 0)\n"
         "  --discriminator    the PatchGAN discriminator of a run with adversarial.weight > 0\n"
         "                     instead, as MONAI's PatchDiscriminator state dict (strict=True); its\n"
         "                     BatchNorm running statistics are rank 0's at the checkpoint (F32;\n"
         "                     __metadata__ batch_norm_running_statistics = checkpoint), or reset\n"
         "                     (mean 0, var 1, count 0; = reset) from a checkpoint that has none\n"
         "  --help             this text\n";
}

int export_command(const std::vector<std::string>& args) {
  std::string checkpoint, out, dtype = "fp32";
  bool ema = false, discriminator = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << export_usage();
      return 0;
    }
    auto value = [&](std::string& into) {
      LADDER_CHECK_USAGE(i + 1 < args.size(), "export: ", arg, " needs a value");
      into = args[++i];
    };
    if (arg == "--checkpoint") value(checkpoint);
    else if (arg == "--out") value(out);
    else if (arg == "--dtype") value(dtype);
    else if (arg == "--ema") ema = true;
    else if (arg == "--discriminator") discriminator = true;
    else
      throw UsageError("export: unknown argument '" + arg + "' (see ladder export --help)");
  }
  LADDER_CHECK_USAGE(!checkpoint.empty() && !out.empty(),
                     "export: --checkpoint DIR and --out M.safetensors are required");
  const std::map<std::string, std::string> dtypes = {{"fp32", "F32"}, {"bf16", "BF16"}, {"fp16", "F16"}};
  LADDER_CHECK_USAGE(dtypes.count(dtype) == 1, "export: --dtype must be fp32, bf16 or fp16 (got '", dtype, "')");

  const io::Manifest manifest = io::verify_checkpoint(checkpoint);
  LADDER_CHECK_USAGE(!ema || io::has_ema(manifest), "export: --ema: ", checkpoint,
                     " holds no moving average of the weights (trained with ema.decay = 0)");
  const Config config = load_config("", model_flags_of(checkpoint));
  std::vector<float> master(static_cast<size_t>(manifest.count));
  io::read_checkpoint_ranges(checkpoint, manifest, ema ? "ema" : "master", {Range{0, manifest.count}},
                             master.data());
  // The autoencoder's (or UNet's) parameters, or the discriminator's, its prefix taken off.
  const std::string prefix = kDiscriminatorPrefix;
  std::vector<io::SafetensorToWrite> tensors;
  int64_t exported = 0;
  for (const io::ParamRecord& p : manifest.params) {
    const bool of_discriminator = p.name.rfind(prefix, 0) == 0;
    if (of_discriminator != discriminator) continue;
    const std::string name = discriminator ? p.name.substr(prefix.size()) : p.name;
    tensors.push_back(torch_tensor(name, p.shape, master.data() + p.offset, dtypes.at(dtype)));
    exported += p.numel;
  }
  LADDER_CHECK_USAGE(!discriminator || !tensors.empty(), "export: --discriminator: ", checkpoint,
                     " holds no discriminator (trained with adversarial.weight = 0)");
  const WrittenStatistics statistics =
      discriminator ? add_batch_norm_buffers(manifest, tensors) : WrittenStatistics::kNone;
  if (statistics == WrittenStatistics::kReset)
    std::cerr << "ladder: warning: " << checkpoint << " holds no BatchNorm running statistics (written before "
              << "ladder kept them): they are exported reset\n";

  nlohmann::json model_keys = nlohmann::json::object();
  const bool unet = config.model.kind == "diffusion_unet";
  for (const auto& [key, value] : manifest.config)
    if (discriminator ? key.rfind("adversarial.", 0) == 0 || key == "model.in_channels"
                      : key.rfind("model.", 0) == 0 || (unet && key.rfind("diffusion.", 0) == 0))
      model_keys[key] = value;
  std::map<std::string, std::string> metadata = {
      {"format", "pt"},
      {"config", model_keys.dump()},
      {"monai_arguments",
       (discriminator ? discriminator_arguments(manifest.config) : monai_arguments(config.model)).dump()},
      {"step", std::to_string(manifest.step)},
      {"weights", ema ? "ema" : "master"},
      {"ladder_version", LADDER_VERSION}};
  if (discriminator)  // "reset" also where no BatchNorm keeps any (norm = instance)
    metadata["batch_norm_running_statistics"] = statistics == WrittenStatistics::kCheckpoint ? "checkpoint" : "reset";
  const auto store = manifest.config.find("data.store");
  const double scale = unet && store != manifest.config.end() ? io::scale_factor_of(store->second) : 0.0;
  if (scale > 0) {
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", scale);
    metadata["scale_factor"] = text;
  }
  io::write_safetensors(out, metadata, tensors);

  for (size_t level = 0; level < config.model.channels.size(); ++level)
    if (!unet && !discriminator && (config.model.attention_levels[level] || (config.model.mid_attention && level + 1 == config.model.channels.size())) &&
        attention_heads(config.model.channels[level]) > 1)
      std::cerr << "ladder: warning: attention at " << config.model.channels[level] << " channels uses "
                << attention_heads(config.model.channels[level])
                << " heads here and one head in MONAI's AutoencoderKL: MONAI's forward differs\n";
  int64_t bytes = 0;
  for (const io::SafetensorToWrite& tensor : tensors) bytes += static_cast<int64_t>(tensor.bytes.size());
  std::cout << "export: " << checkpoint << (ema ? " (moving average" : " (master weights") << ", step " << manifest.step << ", " << manifest.world
            << (manifest.world == 1 ? " rank" : " ranks") << ") -> " << out << ": " << tensors.size()
            << " tensors, " << exported << " parameters, " << dtype << ", " << human_bytes(bytes)
            << "\n";
  return 0;
}

}  // namespace ladder
