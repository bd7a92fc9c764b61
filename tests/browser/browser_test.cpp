// The report and the dashboard in a real headless Chromium (Debian's `chromium`), driven
// over the DevTools protocol: they render without console errors, draw what the run holds,
// fetch nothing from anywhere, show `<script>` as text, and the dashboard follows a run.
// Screenshots are kept under the build directory (tests/browser/artifacts/).
#include <gtest/gtest.h>

#include <httplib.h>

#include <filesystem>
#include <functional>
#include <regex>
#include <set>

#include "pbt/pbt.hpp"
#include "../e2e/process_util.hpp"
#include "cdp.hpp"
#include "common/toy_config.hpp"

namespace fs = std::filesystem;

namespace {

std::string chromium() {
  if (const char* env = std::getenv("PBT_CHROMIUM")) return env;
  return PBT_CHROMIUM;
}

// No browser is a failure, not a skip: CI installs it (scripts/setup.sh).
#define REQUIRE_CHROMIUM()                                                                                    \
  do {                                                                                                        \
    const std::string exe = chromium();                                                                       \
    if (exe.empty() || access(exe.c_str(), X_OK) != 0)                                                        \
      FAIL() << "chromium not found ('" << exe << "'): install Debian's chromium (scripts/setup.sh does) or " \
             << "set PBT_CHROMIUM to its path; the browser tests cannot run without it";                      \
  } while (0)

std::string artifacts() {
  fs::create_directories(PBT_ARTIFACT_DIR);
  return PBT_ARTIFACT_DIR;
}

std::string file_url(const std::string& path) { return "file://" + fs::absolute(path).string(); }

std::string write_config(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += "  " + x + "\n";
  return s;
}

}  // namespace

// A real toy run (examples/toy.toml): one curve per member, one tree node per member-interval,
// one dashed edge per copy, no console errors, no fetches; the screenshot is kept.
TEST(BrowserReport, ToyRunRendersEveryMemberAndInterval) {
  REQUIRE_CHROMIUM();
  const std::string dir = e2e::temp_dir("browser-toy");
  const std::string run_dir = dir + "/run";
  auto r = e2e::run_pbt({"run", std::string(PBT_SOURCE_DIR) + "/examples/toy.toml", "--run", run_dir, "--quiet"}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const std::string html = dir + "/report.html";
  r = e2e::run_pbt({"report", "--run", run_dir, "-o", html}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;

  // What to expect, from the config and the store (not from the report's code).
  auto cfg = pbt::load_config(std::string(PBT_SOURCE_DIR) + "/examples/toy.toml");
  ASSERT_EQ(cfg.ready.min_step, 0);
  const std::int64_t intervals = (cfg.budget_steps + cfg.ready.interval - 1) / cfg.ready.interval;
  std::set<std::string> expected_nodes;
  for (int m = 0; m < cfg.population; ++m)
    for (std::int64_t k = 1; k <= intervals; ++k)
      expected_nodes.insert(std::to_string(m) + ":" +
                            std::to_string(std::min(k * cfg.ready.interval, cfg.budget_steps)));
  auto store = pbt::open_store("sqlite:" + run_dir + "/store.db");
  int copies = 0;
  for (const auto& e : store->events("toy")) copies += e.kind == pbt::EventKind::exploit && e.donor >= 0;

  cdp::Browser browser(chromium(), dir + "/profile", artifacts() + "/chromium-toy.log");
  cdp::Page page(browser);
  page.navigate(file_url(html));
  ASSERT_TRUE(page.wait_for("document.body.getAttribute('data-rendered')", 30)) << join(page.errors());

  EXPECT_EQ(page.eval("document.querySelectorAll('#scores-svg [data-curve-member]').length"), cfg.population);
  EXPECT_EQ(
      page.eval(
          "new Set(Array.from(document.querySelectorAll('[data-curve-member]')).map(e => e.dataset.curveMember)).size"),
      cfg.population);
  EXPECT_EQ(page.eval("Array.from(document.querySelectorAll('[data-curve-member]')).every(g => "
                      "Array.from(g.querySelectorAll('path.line')).reduce((n, p) => n + p.getTotalLength(), 0) > 100)"),
            true)
      << "every member's curve is drawn, and is not a dot";
  const auto nodes =
      page.eval("Array.from(document.querySelectorAll('#tree-svg [data-tree-node]')).map(e => e.dataset.treeNode)");
  EXPECT_EQ(nodes.size(), expected_nodes.size());
  std::set<std::string> got;
  for (const auto& n : nodes) got.insert(n.get<std::string>());
  EXPECT_EQ(got, expected_nodes);
  EXPECT_EQ(page.eval("document.querySelectorAll('#tree-svg [data-tree-edge=copy]').length"), copies);
  EXPECT_EQ(page.eval("document.querySelectorAll('svg[data-param]').length"), cfg.space.params().size());
  EXPECT_EQ(page.eval("document.querySelectorAll('#members-table tbody tr').length"), cfg.population);
  EXPECT_EQ(page.eval("document.querySelectorAll('#errors [data-error]').length"), 0);
  // Each member's trained steps, as the engine's lineage model has them from the store.
  const pbt::Lineage lineage(store->events("toy"), pbt::initial_hyperparams(cfg));
  nlohmann::json trained = nlohmann::json::array();
  for (const auto& m : store->population("toy")) trained.push_back(std::to_string(lineage.trained_steps(m.id, m.step)));
  EXPECT_EQ(
      page.eval("Array.from(document.querySelectorAll('#members-table td[data-trained]')).map(td => td.textContent)"),
      trained);
  EXPECT_EQ(page.eval("document.getElementById('summary').textContent.includes('median efficiency')"), true);

  page.screenshot(artifacts() + "/toy-report.png");
  EXPECT_GT(fs::file_size(artifacts() + "/toy-report.png"), 20000u);

  EXPECT_TRUE(page.errors().empty()) << "console errors:\n" << join(page.errors());
  for (const auto& url : page.requests()) EXPECT_EQ(url, file_url(html)) << "the report fetched something";
}

// `<script>` in a hyperparameter's name and value, and in the trainer's metrics, shows as text.
TEST(BrowserReport, ScriptInConfigShowsAsText) {
  REQUIRE_CHROMIUM();
  const std::string dir = e2e::temp_dir("browser-xss");
  const std::string cfg = write_config(dir, "xss.toml",
                                       pbt::test::ToyConfig("xss")
                                           .population(2)
                                           .set("exploit.fraction", "0.5")
                                           .set("exploit.copy", "\"all\"")
                                           .set("explore.resample_probability", "1.0")
                                           .workers(1)
                                           .append(R"([space."<img src=x onerror=alert(2)>"]
type = "categorical"
choices = ["<script>alert(1)</script>", "</script><script>alert(3)</script>"]
)"));
  auto r = e2e::run_pbt({"run", cfg, "--run", dir + "/run", "--quiet"}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  r = e2e::run_pbt({"report", "--run", dir + "/run", "-o", dir + "/report.html"}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;

  cdp::Browser browser(chromium(), dir + "/profile", artifacts() + "/chromium-xss.log");
  cdp::Page page(browser);
  page.navigate(file_url(dir + "/report.html"));
  ASSERT_TRUE(page.wait_for("document.body.getAttribute('data-rendered')", 30)) << join(page.errors());
  EXPECT_EQ(page.eval("document.scripts.length"), 2) << "only the page's own scripts";
  EXPECT_EQ(page.eval("document.querySelectorAll('img').length"), 0);
  EXPECT_EQ(page.eval("Array.from(document.querySelectorAll('#members-table th')).some(th => th.textContent === "
                      "'<img src=x onerror=alert(2)>')"),
            true);
  EXPECT_EQ(page.eval("Array.from(document.querySelectorAll('#members-table td')).some(td => "
                      "td.textContent.includes('alert('))"),
            true);
  EXPECT_EQ(page.eval("document.querySelector('#config pre').textContent.includes('<script>alert(1)</script>')"), true);
  EXPECT_TRUE(page.errors().empty()) << join(page.errors());
  page.screenshot(artifacts() + "/xss-report.png");
}

// The dashboard follows a run in progress: its JSON and the page both move on.
TEST(BrowserDashboard, UpdatesWhileARunIsInProgress) {
  REQUIRE_CHROMIUM();
  const std::string dir = e2e::temp_dir("browser-dash");
  const std::string run_dir = dir + "/run";
  // Two members, 25 ms a step: about 20 s of training (stopped once seen moving). While
  // `pause` exists the workers hold after 16 steps each, so each check sees the run
  // still going, however slowly this machine starts the dashboard and the browser.
  const std::string pause = dir + "/pause";
  std::ofstream(pause) << "";
  const std::string cfg = write_config(dir, "slow.toml",
                                       pbt::test::ToyConfig("slow")
                                           .population(2)
                                           .sleep_ms(25)
                                           .pause(16, pause)
                                           .steps(800)
                                           .set("ready.interval", "8")
                                           .set("ready.eval_every", "2")
                                           .set("exploit.fraction", "0.5")
                                           .set("exploit.copy", "\"weights\"")
                                           .set("explore.strategy", "\"gaussian\"")
                                           .set("explore.sigma", "0.1")
                                           .workers(2)
                                           .figure2_start());
  pid_t run = e2e::spawn({PBT_BINARY, "run", cfg, "--run", run_dir, "--quiet"}, dir + "/run.out", dir + "/run.err");
  // The dashboard needs the experiment in the store: wait for it (deadline: a hang guard).
  for (auto until = cdp::deadline_in(120); std::chrono::steady_clock::now() < until;) {
    if (fs::exists(run_dir + "/store.db") && pbt::open_store("sqlite:" + run_dir + "/store.db")->experiment("slow"))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  pid_t dash = e2e::spawn({PBT_BINARY, "dashboard", "--run", run_dir, "--port", "0", "--refresh-ms", "500"},
                          dir + "/dash.out", dir + "/dash.err");
  // However the test ends: no worker left holding at the pause, no process left behind.
  bool stopped = false;
  struct Finally {
    std::function<void()> f;
    ~Finally() { f(); }
  } cleanup{[&] {
    fs::remove(pause);
    if (stopped) return;
    kill(run, SIGINT);
    e2e::wait_exit(run);
    kill(dash, SIGINT);
    e2e::wait_exit(dash);
  }};
  int port = 0;
  const std::regex url_re("http://127\\.0\\.0\\.1:([0-9]+)/");
  for (auto until = cdp::deadline_in(120); port == 0 && std::chrono::steady_clock::now() < until;) {
    std::smatch m;
    const std::string out = e2e::read_file(dir + "/dash.out");
    if (std::regex_search(out, m, url_re)) port = std::stoi(m[1]);
    else std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GT(port, 0) << "the dashboard did not say where it listens: " << e2e::read_file(dir + "/dash.out")
                     << e2e::read_file(dir + "/dash.err");

  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(30, 0);
  auto steps_done = [&] {
    auto res = http.Get("/data.json");
    EXPECT_TRUE(res && res->status == 200);
    if (!res || res->status != 200) return std::int64_t{-1};
    auto j = nlohmann::json::parse(res->body);
    return j["steps_done"].get<std::int64_t>();
  };
  const std::int64_t first = steps_done();
  EXPECT_GE(first, 0);
  EXPECT_LT(first, 1600) << "the run finished before the dashboard was asked";
  fs::remove(pause);  // let it go on until the dashboard shows it moving, then hold it again
  std::int64_t second = first;
  for (auto until = cdp::deadline_in(120); second <= first && std::chrono::steady_clock::now() < until;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    second = steps_done();
  }
  std::ofstream(pause) << "";
  EXPECT_GT(second, first) << "the dashboard's data did not move on";

  // Read-only, and only for this machine's names.
  auto post = http.Post("/data.json", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  auto rebind = http.Get("/data.json", {{"Host", "evil.example:" + std::to_string(port)}});
  ASSERT_TRUE(rebind);
  EXPECT_EQ(rebind->status, 403);
  auto page_res = http.Get("/");
  ASSERT_TRUE(page_res);
  EXPECT_EQ(page_res->status, 200);
  EXPECT_NE(page_res->get_header_value("Content-Security-Policy").find("default-src 'none'"), std::string::npos);

  {
    cdp::Browser browser(chromium(), dir + "/profile", artifacts() + "/chromium-dashboard.log");
    cdp::Page page(browser);
    const std::string base = "http://127.0.0.1:" + std::to_string(port) + "/";
    page.navigate(base);
    ASSERT_TRUE(page.wait_for("document.body.getAttribute('data-rendered')", 30)) << join(page.errors());
    const auto nodes0 = page.eval("+document.getElementById('tree-svg').getAttribute('data-tree-nodes')");
    const auto rev0 = page.eval("document.body.getAttribute('data-rendered')");
    ASSERT_TRUE(page.wait_for("+document.getElementById('live').getAttribute('data-refreshes') >= 3", 30))
        << join(page.errors());
    fs::remove(pause);  // the run goes on: the page must follow
    ASSERT_TRUE(page.wait_for("document.body.getAttribute('data-rendered') !== " + rev0.dump(), 60))
        << "the page did not redraw with new data";
    const auto nodes1 = page.eval("+document.getElementById('tree-svg').getAttribute('data-tree-nodes')");
    EXPECT_GT(nodes1.get<int>(), nodes0.get<int>()) << "the lineage tree did not grow";
    EXPECT_EQ(page.eval("document.querySelectorAll('#scores-svg [data-curve-member]').length"), 2);
    page.screenshot(artifacts() + "/dashboard.png");
    EXPECT_TRUE(page.errors().empty()) << join(page.errors());
    for (const auto& url : page.requests()) EXPECT_EQ(url.rfind(base, 0), 0u) << "fetched from elsewhere: " << url;
  }

  stopped = true;
  fs::remove(pause);
  kill(run, SIGINT);  // no need to train to the end
  e2e::wait_exit(run);
  kill(dash, SIGINT);
  EXPECT_EQ(e2e::wait_exit(dash), 0) << e2e::read_file(dir + "/dash.err");
}
