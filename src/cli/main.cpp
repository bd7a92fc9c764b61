// pbt: the command line. Thin: parse, dispatch, report errors.
#include <unistd.h>

#include <climits>
#include <iostream>
#include <vector>

#include <CLI/CLI.hpp>

#include "pbt/error.hpp"
#include "pbt/plugin.hpp"
#include "pbt/version.hpp"
#include "cli/commands.hpp"

namespace {
std::string self_exe(const char* argv0) {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) return std::string(buf, n);
  return argv0;
}

// pbt's own plugins: next to the executable in the build tree (plugins/), and under the
// prefix once installed (lib/.../pbt/plugins). The kinds they provide are loaded on first use.
void declare_builtin_plugins(const std::string& exe) {
  const std::string dir = exe.substr(0, exe.rfind('/') + 1);
  pbt::add_plugin_dir(dir + "plugins");
  pbt::add_plugin_dir(dir + "../" PBT_PLUGIN_SUBDIR);
  for (const char* kind : {"rl", "gan", "translation"})
    pbt::add_builtin_plugin_kind(kind, "libpbt_torch.so",
                                 "the LibTorch trainables; build pbt with LibTorch (libtorch-dev, "
                                 "-DPBT_WITH_TORCH=ON)");
}
}  // namespace

int main(int argc, char** argv) {
  using namespace pbt::cli;
  declare_builtin_plugins(self_exe(argv[0]));
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
                                         add_export(app),
                                         add_study(app, self_exe(argv[0]))};

  // A usage error exits 2 like a config error (CLI11's own codes, 100 and up, are not
  // documented); --help prints and exits 0.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    for (const auto& c : commands) {
      if (!*c.app) continue;
      // Readers of a run build no trainable: they start without its plugin (LibTorch).
      for (const char* reader : {"status", "best", "events", "report", "dashboard", "export"})
        if (c.app->get_name() == reader) pbt::set_plugins_deferred(true);
      return c.run();
    }
  } catch (const pbt::ConfigError& e) {
    std::cerr << "pbt: config error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pbt: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
