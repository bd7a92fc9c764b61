#include "cli/report_commands.hpp"

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/atomic_file.hpp"
#include "pbt/error.hpp"
#include "pbt/dashboard.hpp"
#include "pbt/report.hpp"

namespace fs = std::filesystem;

namespace pbt::cli {

namespace {

std::atomic<bool> g_stop_dashboard{false};
void on_stop(int) { g_stop_dashboard = true; }

// Whole or not at all: on a full disk the old file stays (core/atomic_file.hpp).
void write_file(const std::string& path, const std::string& text) { write_file_atomically(path, text); }

int do_report(const ReportCommands& c) {
  Opened s = open_target(c.target);
  const report::RunData run = report::read_run(*s.store, s.experiment);
  const std::string html = report::render_html(run);
  std::string path = c.out;
  if (path.empty()) path = c.target.run_dir.empty() ? "report.html" : (fs::path(c.target.run_dir) / "report.html").string();
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

int do_dashboard(const ReportCommands& c) {
  Opened s = open_target(c.target);
  if (c.port < 0 || c.port > 65535) throw Error("--port must be in 0..65535");
  report::DashboardOptions opt;
  opt.bind = c.bind;
  opt.port = c.port;
  opt.refresh_ms = std::max(250, c.refresh_ms);
  opt.stop = &g_stop_dashboard;
  opt.on_listen = [&](const std::string& url, int) {
    std::cout << "dashboard of experiment '" << s.experiment << "': " << url << "  (read-only; Ctrl-C stops it)\n"
              << std::flush;
  };
  signal(SIGINT, on_stop);
  signal(SIGTERM, on_stop);
  report::serve_dashboard(*s.store, s.experiment, opt);
  std::cout << "dashboard stopped\n";
  return 0;
}

int do_export(const ReportCommands& c) {
  Opened s = open_target(c.target);
  const report::RunData run = report::read_run(*s.store, s.experiment);
  const report::Format f = c.format == "jsonl" ? report::Format::jsonl : report::Format::csv;
  const std::string ext = f == report::Format::jsonl ? ".jsonl" : ".csv";
  auto make = [&](const std::string& what) {
    if (what == "scores") return report::export_scores(run, f);
    if (what == "hyperparameters") return report::export_hyperparameters(run, f);
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
  if (dir == "-") throw Error("--what all writes three files: give a directory with -o (or choose one with --what)");
  fs::create_directories(dir);
  for (const char* what : {"scores", "hyperparameters", "events"}) {
    const std::string path = (fs::path(dir) / (std::string(what) + ext)).string();
    write_file(path, make(what));
    std::cout << "wrote " << path << "\n";
  }
  return 0;
}

void add_target(CLI::App* cmd, Target& t) {
  cmd->add_option("--run", t.run_dir, "run directory (holds store.db)");
  cmd->add_option("--store", t.store, "store URI instead of a run directory (sqlite:PATH)");
  cmd->add_option("--experiment", t.experiment, "experiment name (needed when the store holds several)");
}

}  // namespace

bool ReportCommands::selected() const { return *report || *dashboard || *exporter; }

int ReportCommands::run() const {
  if (*report) return do_report(*this);
  if (*dashboard) return do_dashboard(*this);
  return do_export(*this);
}

std::unique_ptr<ReportCommands> add_report_commands(CLI::App& app) {
  auto c = std::make_unique<ReportCommands>();
  c->report = app.add_subcommand("report", "one self-contained HTML file: score curves, hyperparameters, lineage tree");
  add_target(c->report, c->target);
  c->report->add_option("-o,--out", c->out, "the HTML file (default: DIR/report.html, or report.html; '-': stdout)");

  c->dashboard = app.add_subcommand("dashboard", "the report's views served over HTTP, refreshing while the run goes on");
  add_target(c->dashboard, c->target);
  c->dashboard->add_option("--port", c->port, "TCP port (default 8080; 0: any free port)");
  c->dashboard->add_option("--bind", c->bind, "address to listen on (default 127.0.0.1: this machine only)");
  c->dashboard->add_option("--refresh-ms", c->refresh_ms, "how often the page refreshes (default 2000)");

  c->exporter = app.add_subcommand("export", "scores, hyperparameters over time and events as CSV or JSON lines");
  add_target(c->exporter, c->target);
  c->exporter->add_option("--format", c->format, "csv (default) or jsonl")->check(CLI::IsMember({"csv", "jsonl"}));
  c->exporter->add_option("--what", c->what, "scores, hyperparameters, events, or all (default: all three)")
      ->check(CLI::IsMember({"scores", "hyperparameters", "events", "all"}));
  c->exporter->add_option("-o,--out", c->out,
                          "one kind: a file (default stdout); all: a directory (default DIR/export, or export)");
  return c;
}

}  // namespace pbt::cli
