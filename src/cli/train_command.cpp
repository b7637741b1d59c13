// Why this file exists: parses `ladder train --config F.ini [--section.key value ...]
// [--resume auto|PATH]` and runs the trainer, ending with where the results are; exit code 75
// when a signal stopped it after a checkpoint.
#include "cli/train_command.h"

#include <iostream>

#include "config/config.h"
#include "core/check.h"
#include "core/log.h"
#include "train/stop_signals.h"
#include "train/trainer.h"

namespace ladder {

std::string train_usage() {
  return "usage: ladder train --config F.ini [--section.key value ...] [--resume auto|PATH]\n"
         "\n"
         "Trains the model of the config on this rank (under mpirun: on every rank).\n"
         "Every config key can be given as a flag; flags win over the file.\n"
         "Checkpoints go to run.dir/checkpoints/ (checkpoint.every, checkpoint.every_minutes,\n"
         "and at the end of every rung). SIGTERM, SIGUSR1 or SIGINT: every rank finishes the\n"
         "current optimizer step, a checkpoint is written, exit code 75. Under mpirun send\n"
         "SIGUSR1 to mpirun (it forwards it to every rank; SIGTERM to mpirun kills the ranks).\n"
         "\n"
         "options:\n"
         "  --config F.ini   the config file (keys not in it take the defaults below)\n"
         "  --resume auto    continue from the newest checkpoint of run.dir that verifies (older\n"
         "                   ones are tried when it does not); start fresh when there is none\n"
         "  --resume PATH    continue from that checkpoint directory (run.dir/checkpoints/step-N)\n"
         "  --help           this text\n"
         "\n"
         "exit codes: 0 done; 1 runtime failure; 2 bad usage, config or input file (a corrupt\n"
         "checkpoint given by --resume PATH included); 75 stopped by a signal after writing a\n"
         "checkpoint (resume with --resume auto)\n"
         "\n" +
         config_help();
}

int train_command(const std::vector<std::string>& args) {
  std::string config_path;
  TrainOptions options;
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
    } else if (args[i] == "--resume" || args[i].rfind("--resume=", 0) == 0) {
      if (args[i] == "--resume") {
        LADDER_CHECK_USAGE(i + 1 < args.size(), "train: --resume needs auto or a checkpoint directory");
        options.resume = args[++i];
      } else {
        options.resume = args[i].substr(9);
      }
      LADDER_CHECK_USAGE(!options.resume.empty(), "train: --resume needs auto or a checkpoint directory");
    } else {
      flags.push_back(args[i]);
    }
  }
  LADDER_CHECK_USAGE(!config_path.empty(), "train: --config F.ini is required (see ladder train --help)");
  Config config = load_config(config_path, flags);
  const StopSignals stop_signals;  // from here a signal stops at the next step boundary
  Trainer trainer(config, nullptr, options);
  TrainSummary summary = trainer.run();
  if (summary.stop_signal != 0) return kExitStopped;
  if (summary.steps_this_run == 0) {  // a resumed run that had nothing left to train
    log_info("done: nothing left to train at step ", summary.steps, " (", summary.images_seen,
             " images); the state is checkpointed in ", config.run.dir, "/checkpoints");
    return 0;
  }
  std::string terms;
  for (const std::string& name : trainer.task().loss_terms())
    terms += detail::concat(terms.empty() ? " (" : ", ", name, " ", summary.first_terms[name], " -> ",
                            summary.last_terms[name]);
  log_info("done: ", summary.steps, " steps, ", summary.images_seen, " images; loss ", summary.first_loss,
           " -> ", summary.last_loss, terms, terms.empty() ? "" : ")");
  log_info("metrics: ", trainer.metrics_path());
  if (!summary.last_validation.empty()) {
    std::string validation;
    for (const auto& [name, value] : summary.last_validation)
      validation += detail::concat(validation.empty() ? "" : ", ", name, " ", value);
    log_info("validation (last): ", validation);
  }
  if (!summary.last_evaluation.empty()) {
    std::string scores;
    for (const auto& [name, value] : summary.last_evaluation)
      if (name == "fid" || name == "kid_mean" || name == "kid_std")
        scores += detail::concat(scores.empty() ? "" : ", ", name, " ", value);
    log_info("evaluation (last): ", scores, " (", summary.evaluation_description, ")");
  }
  auto sample_line = [](const std::string& path, const SampleReport& report) {
    return report.quality_name.empty()
               ? path
               : detail::concat(path, " (", report.quality_name, " ", report.quality, " ", report.unit, ")");
  };
  log_info("samples: ", sample_line(summary.first_sample, summary.first_report));
  log_info("     ->  ", sample_line(summary.last_sample, summary.last_report));
  return 0;
}

}  // namespace ladder
