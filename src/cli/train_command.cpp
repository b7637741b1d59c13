// Why this file exists: parses `ladder train --config F.ini [--section.key value ...]` and
// runs the trainer, ending with where the results are.
#include "cli/train_command.h"

#include <iostream>

#include "config/config.h"
#include "core/check.h"
#include "core/log.h"
#include "train/trainer.h"

namespace ladder {

std::string train_usage() {
  return "usage: ladder train --config F.ini [--section.key value ...]\n"
         "\n"
         "Trains the model of the config on this rank (under mpirun: on every rank).\n"
         "Every config key can be given as a flag; flags win over the file.\n"
         "\n"
         "options:\n"
         "  --config F.ini   the config file (keys not in it take the defaults below)\n"
         "  --help           this text\n"
         "\n" +
         config_help();
}

int train_command(const std::vector<std::string>& args) {
  std::string config_path;
  std::vector<std::string> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::cout << train_usage();
      return 0;
    }
    if (args[i] == "--config") {
      LADDER_CHECK_USAGE(i + 1 < args.size(), "train: --config needs a file");
      config_path = args[++i];
    } else if (args[i].rfind("--config=", 0) == 0) {
      config_path = args[i].substr(9);
    } else {
      flags.push_back(args[i]);
    }
  }
  LADDER_CHECK_USAGE(!config_path.empty(), "train: --config F.ini is required (see ladder train --help)");
  Config config = load_config(config_path, flags);
  Trainer trainer(config);
  TrainSummary summary = trainer.run();
  log_info("done: ", summary.steps, " steps, ", summary.images_seen, " images; loss ",
           summary.first_loss, " -> ", summary.last_loss, " (reconstruction L1 ",
           summary.first_rec_loss, " -> ", summary.last_rec_loss, ")");
  log_info("metrics:         ", trainer.metrics_path());
  log_info("reconstructions: ", summary.first_sample, " (PSNR ", summary.first_psnr, " dB)");
  log_info("             ->  ", summary.last_sample, " (PSNR ", summary.last_psnr, " dB)");
  return 0;
}

}  // namespace ladder
