// Why this file exists: the command line and the table of `ladder plan`.
#include "cli/plan_command.h"

#include <cctype>
#include <cstdio>
#include <iostream>

#include "cli/arguments.h"
#include "config/config.h"
#include "core/check.h"
#include "core/format.h"
#include "plan/memory_planner.h"

namespace ladder {
namespace {

// "80GiB", "32GB", "80G", "512MiB", or plain bytes.
int64_t parse_bytes(const std::string& text) {
  size_t end = 0;
  double value = 0;
  try {
    value = std::stod(text, &end);
  } catch (...) {
    throw UsageError("plan: --gpu-memory '" + text + "' is not a size (e.g. 80GiB)");
  }
  std::string unit = text.substr(end);
  for (char& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  double scale = 1;
  if (unit == "gib" || unit == "g") scale = double(int64_t{1} << 30);
  else if (unit == "gb") scale = 1e9;
  else if (unit == "mib" || unit == "m") scale = double(int64_t{1} << 20);
  else if (unit == "mb") scale = 1e6;
  else if (unit == "tib") scale = double(int64_t{1} << 40);
  else if (!unit.empty() && unit != "b") throw UsageError("plan: --gpu-memory '" + text + "': unknown unit");
  LADDER_CHECK_USAGE(value > 0, "plan: --gpu-memory must be > 0");
  return static_cast<int64_t>(value * scale);
}

}  // namespace

std::string plan_usage() {
  return "usage: ladder plan --config F.ini [--world N] [--gpu-memory 80GiB] [--gpu-tflops T] [--mfu M]\n"
         "                   [--section.key value ...]\n"
         "\n"
         "Per rung: the bytes one rank holds (parameters, gradients, moments, gradient shard, EMA,\n"
         "checkpoint staging, its records, and the activations of one micro-step counted by running\n"
         "the model's own forward and backward without arithmetic), for every micro-batch that\n"
         "divides the per-rank batch, without and with recompute; the largest that fits, the\n"
         "accumulation, and an estimated step time from the layers' FLOPs. Without --gpu-memory the\n"
         "plan is for CPU ranks: host bytes, exactly as ladder allocates them (what mem_peak_bytes\n"
         "reports). With it, for GPUs of that memory: the same tensors at bf16 width plus an\n"
         "allowance of 10% + 1 GiB for cuDNN workspaces and fragmentation (an estimate).\n"
         "\n"
         "options:\n"
         "  --config F.ini    the run's config (its data.store is opened for the record counts)\n"
         "  --world N         ranks (default 1)\n"
         "  --gpu-memory S    memory per GPU: 80GiB, 32GB, ... (a GPU plan)\n"
         "  --gpu-tflops T    the GPU's dense bf16 TFLOP/s for the step-time estimate (default 989)\n"
         "  --mfu M           the share of it assumed (default 0.35)\n"
         "  --help            this text\n";
}

int plan_command(const std::vector<std::string>& args) {
  std::string config_path;
  PlanTarget target;
  std::vector<std::string> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << plan_usage();
      return 0;
    }
    auto value = [&]() -> const std::string& { return option_value(args, i, "plan"); };
    if (arg == "--config") config_path = value();
    else if (arg == "--world") target.world = static_cast<int>(positive_integer(value(), "plan", arg));
    else if (arg == "--gpu-memory") {
      target.gpu = true;
      target.gpu_memory = parse_bytes(value());
    } else if (arg == "--gpu-tflops") target.gpu_tflops = std::atof(value().c_str());
    else if (arg == "--mfu") target.mfu = std::atof(value().c_str());
    else flags.push_back(arg);
  }
  LADDER_CHECK_USAGE(!config_path.empty(), "plan: --config is required (see ladder plan --help)");
  LADDER_CHECK_USAGE(target.gpu_tflops > 0 && target.mfu > 0 && target.mfu <= 1,
                     "plan: --gpu-tflops must be > 0 and --mfu in (0, 1]");
  const Config config = load_config(config_path, flags);
  const MemoryPlanner planner(config, target);
  std::printf("plan: %s (%s), world %d, ZeRO stage %d, batch %lld; %s\n", config_path.c_str(),
              config.model.kind.c_str(), target.world, config.train.zero_stage,
              static_cast<long long>(config.train.batch),
              target.gpu ? detail::concat("GPUs of ", human_bytes(target.gpu_memory),
                                          " (bf16 activations; estimate, allowance 10% + 1 GiB)")
                               .c_str()
                         : "CPU ranks (host bytes as ladder allocates them)");
  for (int rung = 0; rung < config.stages.rungs(); ++rung) {
    const RungMemoryPlan plan = planner.plan_rung(rung);
    std::printf("\nrung %d: %dx%d, per-rank batch %lld\n", rung, plan.resolution, plan.resolution,
                static_cast<long long>(plan.per_rank_batch));
    std::printf("  per rank: parameters %s, gradients %s, moments %s, gradient shard %s, EMA %s, "
                "checkpoint staging %s, records %s; fixed %s\n",
                human_bytes(plan.parameters).c_str(), human_bytes(plan.gradients).c_str(),
                human_bytes(plan.moments).c_str(), human_bytes(plan.gradient_shard).c_str(),
                human_bytes(plan.ema).c_str(), human_bytes(plan.checkpoint_staging).c_str(),
                human_bytes(plan.records).c_str(), human_bytes(plan.fixed_bytes()).c_str());
    if (plan.evaluation_weights > 0)
      std::printf("  evaluation (eval.count %lld): InceptionV3 weights and workspaces %s (in fixed), "
                  "scoring one image %s%s\n",
                  static_cast<long long>(config.eval.count), human_bytes(plan.evaluation_weights).c_str(),
                  human_bytes(plan.evaluation_activations).c_str(),
                  target.gpu ? "" : " with the rank's images and the features");
    std::printf("  %-6s %-9s %14s %14s  %s\n", "micro", "recompute", "activations", "total", "fits");
    const MicroBatchPlan* chosen = nullptr;
    for (const MicroBatchPlan& o : plan.options) {
      std::printf("  %-6d %-9s %14s %14s  %s\n", o.micro, o.recompute ? "blocks" : "none",
                  human_bytes(o.activation_bytes).c_str(), human_bytes(o.total_bytes).c_str(), o.fits ? "yes" : "no");
      // The trainer's auto: the largest micro-batch that fits, without recompute before with it.
      if (o.fits && (chosen == nullptr || o.micro > chosen->micro)) chosen = &o;
    }
    if (chosen == nullptr) {
      std::printf("  nothing fits: more ranks (ZeRO shards the state), a smaller batch, or a bigger GPU\n");
      continue;
    }
    const int64_t accumulation = plan.per_rank_batch / chosen->micro;
    std::printf("  chosen: micro-batch %d, recompute %s, accumulation %lld", chosen->micro,
                chosen->recompute ? "blocks" : "none", static_cast<long long>(accumulation));
    if (target.gpu) {
      const double flops = plan.training_flops_per_image * (chosen->recompute ? 4.0 / 3.0 : 1.0);
      const double seconds = flops * double(plan.per_rank_batch) / (target.gpu_tflops * 1e12 * target.mfu);
      std::printf("; step %.3g s, %.3g img/s over %d GPUs (estimate: %.3g TFLOP per image at %.0f%% of %.0f TFLOP/s)",
                  seconds, double(config.train.batch) / seconds, target.world, flops / 1e12, 100 * target.mfu,
                  target.gpu_tflops);
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace ladder
