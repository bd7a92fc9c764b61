// pbt: the command line. Thin: parse, dispatch, report errors.
#include <unistd.h>

#include <climits>
#include <iostream>
#include <vector>

#include <CLI/CLI.hpp>

#include "pbt/error.hpp"
#include "pbt/version.hpp"
#include "cli/commands.hpp"
#ifdef PBT_WITH_TORCH
#include "trainables/torch/torch_trainables.hpp"
#endif

namespace {
std::string self_exe(const char* argv0) {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) return std::string(buf, n);
  return argv0;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace pbt::cli;
  CLI::App app{"pbt: Population Based Training (Jaderberg et al., 2017)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", pbt::version_text(),
                       "print pbt's version, the process protocol's and the store schemas', and exit");
  const std::vector<Command> commands = {add_run(app, self_exe(argv[0])),
                                         add_create(app),
                                         add_worker(app),
                                         add_status(app),
                                         add_best(app),
                                         add_events(app),
                                         add_replay(app),
                                         add_report(app),
                                         add_dashboard(app),
                                         add_export(app)};

  // A usage error exits 2 like a config error (CLI11's own codes, 100 and up, are not
  // documented); --help prints and exits 0.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
#ifdef PBT_WITH_TORCH
    pbt::register_torch_trainables();
#endif
    for (const auto& c : commands)
      if (*c.app) return c.run();
  } catch (const pbt::ConfigError& e) {
    std::cerr << "pbt: config error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pbt: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
