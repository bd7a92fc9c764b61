#pragma once
// `pbt report`, `pbt dashboard` and `pbt export`: pictures and tables of a run (src/report).
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"

namespace pbt::cli {

struct ReportCommands {
  CLI::App* report = nullptr;
  CLI::App* dashboard = nullptr;
  CLI::App* exporter = nullptr;
  Target target;
  std::string out;                 // report: the HTML file; export: a file or a directory
  std::string bind = "127.0.0.1";  // dashboard
  int port = 8080;
  int refresh_ms = 2000;
  std::string format = "csv";      // export
  std::string what = "all";

  bool selected() const;
  int run() const;                 // the exit status
};

// Adds the three subcommands to `app`; call run() after parsing when selected().
std::unique_ptr<ReportCommands> add_report_commands(CLI::App& app);

}  // namespace pbt::cli
