// Why this file exists: the `ladder` binary. Dispatches commands, turns every exception into
// one error line and an exit code (2: bad input, 1: failure), and ends all ranks on error.
#include <iostream>
#include <string>
#include <vector>

#include "cli/encode_command.h"
#include "cli/evaluate_command.h"
#include "cli/export_command.h"
#include "cli/inspect_command.h"
#include "cli/pack_command.h"
#include "cli/plan_command.h"
#include "cli/reconstruct_command.h"
#include "cli/sample_command.h"
#include "cli/train_command.h"
#include "comm/mpi_session.h"
#include "core/check.h"
#include "core/context.h"

namespace {

const char* kUsage =
    "usage: ladder <command> [options]\n"
    "\n"
    "ladder trains high-resolution latent-diffusion models on CPUs and GPUs: the KL\n"
    "autoencoder (AutoencoderKL, stage 1), then a diffusion UNet on its latents (stage 2:\n"
    "encode, train with model.kind = diffusion_unet, sample).\n"
    "\n"
    "commands:\n"
    "  train --config F.ini [--section.key value ...] [--resume auto|PATH]\n"
    "                                                   train (under mpirun: on every rank)\n"
    "  pack --images DIR | --synthetic N --out S.h5 --levels 256,512,1024\n"
    "                                                   build an HDF5 image store\n"
    "  inspect PATH                                     describe and validate a store, a\n"
    "                                                   checkpoint or a run directory\n"
    "  export --checkpoint DIR --out M.safetensors [--ema] [--dtype fp32|bf16|fp16]\n"
    "                                                   weights for PyTorch/MONAI\n"
    "  reconstruct --checkpoint DIR|M.safetensors --store S.h5 [--resolution R] [--count N]\n"
    "              --out grid.png|R.h5                  evaluate: mean L1, PSNR, a grid or float32 h5\n"
    "  encode --checkpoint AE --store S.h5 --out L.h5 [--levels ...]\n"
    "                                                   a latent store for stage 2 (under mpirun)\n"
    "  sample --checkpoint UNET [--autoencoder AE] --count N --resolution R --sampler ddim|ddpm\n"
    "         --steps S --out grid.png [--save-latents F.h5]  generate images (stage 2)\n"
    "  evaluate --features A.h5 --reference B.h5        FID and KID between two feature sets\n"
    "  evaluate --store S.h5 --weights W [--save-features F.h5] [--reference B.h5]\n"
    "                                                   InceptionV3 features of a store (and FID/KID)\n"
    "  evaluate --checkpoint AE --store S.h5 --weights W  an autoencoder's rFID, PSNR, L1, SSIM, MS-SSIM\n"
    "  evaluate --checkpoint UNET --autoencoder AE --count N --resolution R --weights W --reference F\n"
    "                                                   FID and KID of a UNet's samples\n"
    "  plan --config F.ini [--world N] [--gpu-memory 80GiB]\n"
    "                                                   bytes per rank and the micro-batch that fits\n"
    "\n"
    "options:\n"
    "  --help, -h      this text; `ladder <command> --help` for a command\n"
    "  --version       version and the backends of this build\n";

int dispatch(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage << "\n" << ladder::train_usage().substr(ladder::train_usage().find("options:"));
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "ladder " LADDER_VERSION " (cpu"
#ifdef LADDER_WITH_CUDA
              << ", cuda compiled"
#endif
#ifdef LADDER_WITH_MPI
              << ", mpi"
#endif
              << ")\n";
    return 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "train") return ladder::train_command(rest);
  if (args[0] == "pack") return ladder::pack_command(rest);
  if (args[0] == "inspect") return ladder::inspect_command(rest);
  if (args[0] == "export") return ladder::export_command(rest);
  if (args[0] == "encode") return ladder::encode_command(rest);
  if (args[0] == "sample") return ladder::sample_command(rest);
  if (args[0] == "reconstruct") return ladder::reconstruct_command(rest);
  if (args[0] == "plan") return ladder::plan_command(rest);
  if (args[0] == "evaluate") return ladder::evaluate_command(rest);
  throw ladder::UsageError("unknown command '" + args[0] + "' (see ladder --help)");
}

}  // namespace

int main(int argc, char** argv) {
  ladder::MpiSession mpi(&argc, &argv);
  const std::vector<std::string> args(argv + 1, argv + argc);
  int code = 0;
  try {
    code = dispatch(args);
  } catch (const ladder::UsageError& e) {
    std::cerr << "ladder: error: " << e.what() << "\n";
    code = 2;
  } catch (const std::exception& e) {
    const ladder::ProcessContext& context = ladder::ProcessContext::get();
    if (context.world() > 1)
      std::cerr << "ladder: error on rank " << context.rank() << ": " << e.what() << "\n";
    else
      std::cerr << "ladder: error: " << e.what() << "\n";
    code = 1;
  }
  // A stop after a checkpoint (75) is agreed by every rank: they all leave normally.
  if (code != 0 && code != ladder::kExitStopped && ladder::ProcessContext::get().world() > 1)
    ladder::MpiSession::abort_all(code);
  return code;
}
