// `pbt report`, `pbt dashboard` and `pbt export`: pictures and tables of a run (src/report).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "pbt/dashboard.hpp"
#include "pbt/error.hpp"
#include "pbt/report.hpp"
#include "cli/commands.hpp"
#include "core/atomic_file.hpp"

namespace fs = std::filesystem;

namespace pbt::cli {

namespace {

// Whole or not at all: on a full disk the old file stays (core/atomic_file.hpp).
void write_file(const std::string& path, const std::string& text) { write_file_atomically(path, text); }

struct ReportArgs {
  Target target;
  std::string out;  // the HTML file
};

int do_report(const ReportArgs& c) {
  Opened s = open_target(c.target);
  const report::RunData run = report::read_run(*s.store, s.experiment);
  const std::string html = report::render_html(run);
  std::string path = c.out;
  if (path.empty())
    path = c.target.run_dir.empty() ? "report.html" : (fs::path(c.target.run_dir) / "report.html").string();
  if (path == "-") {
    std::cout << html;
    return 0;
  }
  write_file(path, html);
  std::cout << "wrote " << path << " (" << (html.size() + 1023) / 1024 << " KiB): experiment '" << s.experiment << "', "
            << run.population.size() << " members, " << run.events.size() << " events, " << run.scores.size()
            << " evals\n";
  return 0;
}

struct DashboardArgs {
  Target target;
  std::string bind = "127.0.0.1";
  int port = 8080;
  int refresh_ms = 2000;
};

int do_dashboard(const DashboardArgs& c) {
  Opened s = open_target(c.target);
  if (c.port < 0 || c.port > 65535) throw Error("--port must be in 0..65535");
  report::DashboardOptions opt;
  opt.bind = c.bind;
  opt.port = c.port;
  opt.refresh_ms = std::max(250, c.refresh_ms);
  opt.on_listen = [&](const std::string& url, int) {
    std::cout << "dashboard of experiment '" << s.experiment << "': " << url << "  (read-only; Ctrl-C stops it)\n"
              << std::flush;
  };
  opt.stop = &stop_on_signals();
  report::serve_dashboard(*s.store, s.experiment, opt);
  std::cout << "dashboard stopped\n";
  return 0;
}

struct ExportArgs {
  Target target;
  std::string out;  // a file or a directory
  std::string format = "csv";
  std::string what = "all";
};

int do_export(const ExportArgs& c) {
  Opened s = open_target(c.target);
  const report::RunData run = report::read_run(*s.store, s.experiment);
  const report::Format f = c.format == "jsonl" ? report::Format::jsonl : report::Format::csv;
  const std::string ext = f == report::Format::jsonl ? ".jsonl" : ".csv";
  auto make = [&](const std::string& what) {
    if (what == "scores") return report::export_scores(run, f);
    if (what == "hyperparameters") return report::export_hyperparameters(run, f);
    if (what == "members") return report::export_members(run, f);
    return report::export_events(run, f);
  };
  if (c.what != "all") {
    const std::string text = make(c.what);
    if (c.out.empty() || c.out == "-") {
      std::cout << text;
    } else {
      write_file(c.out, text);
      std::cout << "wrote " << c.out << "\n";
    }
    return 0;
  }
  std::string dir = c.out;
  if (dir.empty()) dir = c.target.run_dir.empty() ? "export" : (fs::path(c.target.run_dir) / "export").string();
  if (dir == "-") throw Error("--what all writes four files: give a directory with -o (or choose one with --what)");
  fs::create_directories(dir);
  for (const char* what : {"scores", "hyperparameters", "members", "events"}) {
    const std::string path = (fs::path(dir) / (std::string(what) + ext)).string();
    write_file(path, make(what));
    std::cout << "wrote " << path << "\n";
  }
  return 0;
}

}  // namespace

Command add_report(CLI::App& app) {
  auto a = std::make_shared<ReportArgs>();
  auto* cmd = app.add_subcommand("report", "one self-contained HTML file: score curves, hyperparameters, lineage tree");
  add_target(cmd, a->target);
  cmd->add_option("-o,--out", a->out, "the HTML file (default: DIR/report.html, or report.html; '-': stdout)");
  return {cmd, [a] { return do_report(*a); }};
}

Command add_dashboard(CLI::App& app) {
  auto a = std::make_shared<DashboardArgs>();
  auto* cmd = app.add_subcommand("dashboard", "the report's views served over HTTP, refreshing while the run goes on");
  add_target(cmd, a->target);
  cmd->add_option("--port", a->port, "TCP port (default 8080; 0: any free port)");
  cmd->add_option("--bind", a->bind, "address to listen on (default 127.0.0.1: this machine only)");
  cmd->add_option("--refresh-ms", a->refresh_ms, "how often the page refreshes (default 2000)");
  return {cmd, [a] { return do_dashboard(*a); }};
}

Command add_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  auto* cmd =
      app.add_subcommand("export", "scores, hyperparameters over time, the members and events as CSV or JSON lines");
  add_target(cmd, a->target);
  cmd->add_option("--format", a->format, "csv (default) or jsonl")->check(CLI::IsMember({"csv", "jsonl"}));
  cmd->add_option("--what", a->what, "scores, hyperparameters, members, events, or all (default: all four)")
      ->check(CLI::IsMember({"scores", "hyperparameters", "members", "events", "all"}));
  cmd->add_option("-o,--out", a->out,
                  "one kind: a file (default stdout); all: a directory (default DIR/export, or export)");
  return {cmd, [a] { return do_export(*a); }};
}

}  // namespace pbt::cli
