// The report's HTML: a page template with named slots, filled from page_data.
#include "report/html.hpp"

#include <cstdio>

#include "pbt/report.hpp"

namespace pbt::report {

namespace assets {
extern const char* const script;  // report.js, embedded at build time
extern const char* const style;   // report.css
}  // namespace assets

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string script_json(const nlohmann::json& j) {
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + 64);
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    // These characters only occur inside JSON strings, where \uXXXX means the same.
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else if (c == '\xe2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
             (text[i + 2] == '\xa8' || text[i + 2] == '\xa9')) {
      out += text[i + 2] == '\xa8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::string fill(std::string_view page, const std::map<std::string, std::string>& slots) {
  std::string out;
  out.reserve(page.size());
  std::size_t at = 0;
  for (std::size_t open; (open = page.find("{{", at)) != std::string_view::npos;) {
    const std::size_t close = page.find("}}", open);
    if (close == std::string_view::npos) break;
    out.append(page, at, open - at);
    out += slots.at(std::string(page.substr(open + 2, close - open - 2)));
    at = close + 2;
  }
  out.append(page, at, std::string_view::npos);
  return out;
}

namespace {

// The page. The charts and tables are drawn by the embedded script from the data in
// #pbt-data (the dashboard redraws them from fresh data); only the config is static.
// Nothing may be fetched: no scripts, styles, fonts or images from anywhere (the dashboard
// may only ask its own server for fresh data).
constexpr std::string_view kPage = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:{{connect}}">
<title>PBT {{kind}}: {{name}}</title>
<style>
{{style}}</style>
</head>
<body>
<header><h1>PBT {{kind}}: <span id="experiment-name">{{name}}</span></h1>
<p class="summary" id="summary">{{summary}}</p>{{live}}
<nav><a href="#scores">scores</a> <a href="#tree">lineage tree</a> <a href="#hyper">hyperparameters</a> <a href="#schedule">inherited schedule</a> <a href="#members">final population</a> <a href="#config">config</a></nav></header>
<noscript><p class="note">The charts and tables need JavaScript; the config below does not.</p></noscript>
<div id="errors" class="errors" hidden></div>
<main>
<section id="scores"><h2>Score by step</h2><div class="controls" id="scores-controls"></div><div class="legend" id="scores-legend"></div><div class="chart" id="chart-scores"></div><p class="note" id="scores-note"></p></section>
<section id="tree"><h2>Lineage tree</h2><div class="legend" id="tree-legend"></div><div class="chart" id="chart-tree"></div><p class="note" id="tree-note"></p></section>
<section id="hyper"><h2>Hyperparameters by step</h2><p class="note">Each member's value over time, coloured by lineage; a ring marks a copy (exploit), after which the value jumps.</p><div class="grid" id="chart-hyper"></div></section>
<section id="schedule"><h2>Schedule inherited by the best member</h2><p class="note" id="schedule-note"></p><div class="grid" id="chart-schedule"></div><div id="schedule-table"></div></section>
<section id="members"><h2>Final population</h2><div id="members-box"></div></section>
<section id="config"><h2>Config</h2><p class="note">{{origin}}</p><pre>{{config}}</pre></section>
</main>
<script type="application/json" id="pbt-data">{{data}}</script>
<script>
{{script}}</script>
</body></html>
)";

}  // namespace

std::string render_html(const RunData& run, const PageOptions& opt) {
  const nlohmann::json d = page_data(run, opt);
  // What report.js writes first, without the charts' details; efficiency as its fmt() does (4 digits).
  std::string median;
  if (d["median_efficiency"].is_number()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", d["median_efficiency"].get<double>());
    median = std::string(", median efficiency ") + buf + " (trained steps / step)";
  }
  const std::string summary = std::to_string(d["population"].get<std::size_t>()) + " members, " +
                              std::to_string(d["members_done"].get<int>()) + " done, " +
                              std::to_string(d["events"].size()) + " events" + median + ", generated " +
                              html_escape(d["generated"].get<std::string>());
  const std::string live = "<p class=\"live\" id=\"live\" data-refreshes=\"0\">live: refreshing every " +
                           std::to_string(opt.refresh_ms / 1000.0).substr(0, 3) + " s</p>";
  return fill(kPage, {{"connect", opt.live ? "; connect-src 'self'" : ""},
                      {"kind", opt.live ? "dashboard" : "report"},
                      {"name", html_escape(run.info.name)},
                      {"style", assets::style},
                      {"summary", summary},
                      {"live", opt.live ? live : ""},
                      {"origin", html_escape(run.info.origin)},
                      {"config", html_escape(run.info.config)},
                      {"data", script_json(d)},
                      {"script", assets::script}});
}

}  // namespace pbt::report
