#pragma once
// The `pbt` subcommands, each in its own file with its options and its action
// (cli/command.hpp). main adds them in this order, which is the order of --help.
#include <string>

#include "cli/command.hpp"

namespace pbt::cli {

Command add_run(CLI::App& app, const std::string& self_exe);  // run_command.cpp
Command add_create(CLI::App& app);                            // run_command.cpp
Command add_worker(CLI::App& app);
Command add_status(CLI::App& app);
Command add_best(CLI::App& app);
Command add_events(CLI::App& app);
Command add_replay(CLI::App& app);
Command add_report(CLI::App& app);     // report_commands.cpp
Command add_dashboard(CLI::App& app);  // report_commands.cpp
Command add_export(CLI::App& app);     // report_commands.cpp

Command add_study(CLI::App& app, const std::string& self_exe);  // study_command.cpp

}  // namespace pbt::cli
