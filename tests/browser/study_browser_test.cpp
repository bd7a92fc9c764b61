// study.html (`pbt study`) in a real headless Chromium: it draws one curve per variant, a row
// per variant and per run, fetches nothing, runs no script, and shows `<script>` in the study
// file as text.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../e2e/process_util.hpp"
#include "cdp.hpp"

namespace fs = std::filesystem;

TEST(BrowserStudy, ToyStudyPageDrawsEveryVariantAndFetchesNothing) {
  std::string exe = std::getenv("PBT_CHROMIUM") ? std::getenv("PBT_CHROMIUM") : PBT_CHROMIUM;
  if (exe.empty() || access(exe.c_str(), X_OK) != 0)
    FAIL() << "chromium not found ('" << exe << "'): install Debian's chromium (scripts/setup.sh does)";
  const std::string dir = e2e::temp_dir("browser-study");
  // The toy study, with a comment that must stay text.
  std::ifstream in(std::string(PBT_SOURCE_DIR) + "/examples/studies/toy.toml");
  std::stringstream text;
  text << "# <script>alert(1)</script>\n" << in.rdbuf();
  std::string study = text.str();
  const std::string base = "base = \"../toy.toml\"";
  study.replace(study.find(base), base.size(), "base = \"" + std::string(PBT_SOURCE_DIR) + "/examples/toy.toml\"");
  std::ofstream(dir + "/toy.toml") << study;
  auto r = e2e::run_pbt({"study", dir + "/toy.toml", "--jobs", "2"}, dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const std::string html = dir + "/toy.study/study.html";
  ASSERT_TRUE(fs::exists(html));

  fs::create_directories(PBT_ARTIFACT_DIR);
  cdp::Browser browser(exe, dir + "/profile", std::string(PBT_ARTIFACT_DIR) + "/chromium-study.log");
  cdp::Page page(browser);
  const std::string url = "file://" + fs::absolute(html).string();
  page.navigate(url);
  ASSERT_TRUE(page.wait_for("document.readyState === 'complete'", 30));
  EXPECT_EQ(page.eval("document.querySelectorAll('#curves svg g.curve').length"), 2);
  EXPECT_EQ(page.eval("Array.from(document.querySelectorAll('#curves svg g.curve path.line')).every(p => "
                      "p.getTotalLength() > 100)"),
            true)
      << "every variant's curve is drawn, and is not a dot";
  EXPECT_EQ(page.eval("Array.from(document.querySelectorAll('#curves g.curve')).map(g => g.dataset.variant)"),
            (nlohmann::json{"pbt", "no-exploit"}));
  EXPECT_EQ(page.eval("document.querySelectorAll('#figures tbody tr').length"), 2);
  EXPECT_EQ(page.eval("document.querySelectorAll('#runs tbody tr').length"), 6);
  EXPECT_EQ(page.eval("JSON.parse(document.getElementById('pbt-study-data').textContent).variants.length"), 2);
  EXPECT_EQ(page.eval("document.scripts.length"), 1) << "only the data block";
  EXPECT_EQ(page.eval("document.querySelector('#study-file pre').textContent.includes('<script>alert(1)</script>')"),
            true);
  page.screenshot(std::string(PBT_ARTIFACT_DIR) + "/toy-study.png");
  EXPECT_TRUE(page.errors().empty()) << "console errors";
  for (const auto& u : page.requests()) EXPECT_EQ(u, url) << "the page fetched something";
}
