// Why this file exists: the resolved, validated training configuration (BRIEF §5 keys).
// Every key is read from the INI file and may be overridden by a `--section.key` flag;
// values are checked here so that the rest of the engine can trust them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ladder {

struct RunConfig {
  std::string dir;
  uint64_t seed = 0;
  std::string device;  // auto | cpu | cuda
  int log_every = 10;
  int sample_every = 100;  // 0: only at the start and the end
  int val_every = 0;       // steps between validations; 0: at the end of each rung only
  int eval_every = 0;      // steps between FID/KID evaluations (eval.count > 0); 0: rung ends only
};

struct ModelConfig {
  std::string kind;  // autoencoder_kl
  int in_channels = 3;
  std::vector<int> channels;
  int res_blocks = 2;
  std::vector<bool> attention_levels;  // one per level
  bool mid_attention = false;          // mid block: ResBlock, attention, ResBlock
  std::vector<int> head_channels;      // diffusion UNet: channels per attention head, per level
  int latent_channels = 4;
  int norm_groups = 32;
  double norm_eps = 1e-6;
};

struct DataConfig {
  std::string store;    // HDF5 image store (`ladder pack`) or a foreign HDF5 file
  std::string dataset;  // foreign file: the (N, H, W, C) uint8 dataset; empty: format-1 store
  std::string layout = "auto";     // foreign dataset: auto | nhwc | nchw
  std::string intensity = "auto";  // data/intensity.h: auto | minmax | window:A,B | percentile:P,Q
  int64_t partitions = 0;  // the data order's partitions (data/data_order.h); 0: auto (train.batch)
  bool flip = true;
  int prefetch = 4;
  int loader_threads = 1;
  std::string val_store;   // validation records: another store of the same kind
  int64_t val_images = 0;  // or the last N images of `store`, never trained on
};

struct TrainConfig {
  int64_t batch = 32;                  // effective (global) batch per optimizer step
  std::vector<int> micro_batch;        // per rung; 0 means auto
  double lr = 1e-4;
  double warmup_images = 0;
  double beta1 = 0.9, beta2 = 0.999;
  double weight_decay = 0.01;
  double grad_clip = 1.0;              // global norm; 0 disables
  double kl_weight = 1e-6;
  std::string precision;               // auto | fp32 | bf16 | fp16
  int zero_stage = 2;
  double bucket_mb = 25;
  std::vector<std::string> recompute;  // per rung: none | blocks | auto
  std::string init_from;               // checkpoint directory to start from; empty: none
};

struct StagesConfig {
  std::vector<int> resolutions;
  std::vector<int64_t> images;  // per rung: images trained at that rung
  std::vector<double> lr_scale;
  std::vector<bool> reset_optimizer;

  int rungs() const { return static_cast<int>(resolutions.size()); }
};

struct CheckpointConfig {
  int every = 0;             // steps between checkpoints; 0: rung and run ends only
  double every_minutes = 0;  // minutes between checkpoints; 0: off
  int keep = 3;              // newest complete checkpoints kept
};

struct DiffusionConfig {  // stage 2 (diffusion/)
  int timesteps = 1000;
  std::string schedule;     // linear_beta | scaled_linear_beta | cosine
  double beta_start = 1e-4, beta_end = 2e-2;
  std::string prediction;   // epsilon | v_prediction | sample
  double snr_gamma = 0;     // 0: off
  double noise_offset = 0;  // 0: off
  bool clip_sample = true;  // sampling: clamp the predicted x0 to [−1, 1]
};

struct EmaConfig {
  double decay = 0;  // 0: off
};

// Stage 1's PatchGAN adversarial loss (MONAI's LDM tutorial: weight 0.01 after a warm-up).
struct AdversarialConfig {
  double weight = 0;      // 0: off
  int64_t start_step = 0; // the generator's term and the discriminator's steps from the step after it
  std::string criterion;  // least_squares | hinge | bce (MONAI's PatchAdversarialLoss)
  double lr = 5e-4;       // the discriminator's AdamW, constant
  double beta1 = 0.9, beta2 = 0.999;
  int layers = 3;         // PatchDiscriminator num_layers_d
  int channels = 64;      // of its first convolution, doubled by each layer
  std::string norm;       // batch | instance (MONAI's BATCH, the default, or INSTANCE)
  bool enabled() const { return weight > 0; }
};

// Stage 1's LPIPS perceptual loss (MONAI's LDM tutorial: AlexNet, weight 0.001).
struct PerceptualConfig {
  double weight = 0;     // 0: off
  std::string network;   // alex | vgg
  std::string weights;   // safetensors with the lpips package's names (README)
  bool enabled() const { return weight > 0; }
};

// FID and KID during training (train/training_evaluation.h).
struct EvalConfig {
  int64_t count = 0;       // images scored; 0: off
  std::string reference;   // image store, feature file or .npz statistics; empty: the originals (stage 1)
  std::string mode;        // pytorch_fid | tf1
  std::string weights;     // InceptionV3 safetensors, or random[:SEED]
  std::string sampler;     // stage 2: ddim | ddpm
  int steps = 50;          // stage 2: sampling steps
  bool enabled() const { return count > 0; }
};

struct LogConfig {
  bool tensorboard = true;  // run.dir/tb event files
  std::string progress;     // auto | redraw | lines
};

struct CommConfig {
  std::string backend;  // auto | nccl | mpi
  double timeout_s = 300;
};

struct Config {
  RunConfig run;
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  StagesConfig stages;
  DiffusionConfig diffusion;
  EmaConfig ema;
  AdversarialConfig adversarial;
  PerceptualConfig perceptual;
  EvalConfig eval;
  CheckpointConfig checkpoint;
  LogConfig log;
  CommConfig comm;

  // Every key as "section.key" and its value text, in the canonical order (a checkpoint's
  // manifest stores them; a resume compares them).
  std::vector<std::pair<std::string, std::string>> key_values() const;
  // The resolved config as INI text, every key, in the canonical order (config.ini).
  std::string to_ini() const;
};

// Parses `config_path` (may be empty: defaults only) with `flags` (the "--section.key value"
// arguments after the command) winning over the file. Throws UsageError naming the key and
// its source for an unknown key, a malformed value, or an inconsistent combination.
Config load_config(const std::string& config_path, const std::vector<std::string>& flags);

// The `--help` text listing every key with its default and meaning.
std::string config_help();

// Per-rung accessors: the resolved micro-batch (auto → per-rank batch) and accumulation.
int micro_batch_for_rung(const Config& config, int rung, int world);
int accumulation_for_rung(const Config& config, int rung, int world);

}  // namespace ladder
