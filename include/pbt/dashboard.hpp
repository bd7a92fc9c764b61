#pragma once
// `pbt dashboard`: the report's page (pbt/report.hpp) served over HTTP while a run goes on. The page polls
// /data.json and redraws when the run has moved on. Read-only: GET (and HEAD) only.
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "pbt/store.hpp"

namespace pbt::report {

struct DashboardOptions {
  std::string bind = "127.0.0.1";  // loopback unless told otherwise
  int port = 8080;                 // 0: any free port
  int refresh_ms = 2000;           // how often the page asks for fresh data
  double cache_seconds = 0.5;      // data read from the store at most this often
  // Called once listening, with the URL (the real port when `port` was 0).
  std::function<void(const std::string& url, int port)> on_listen;
  const std::atomic<bool>* stop = nullptr;  // serves until this turns true
};

// Serves `experiment` from `store` until options.stop. Throws Error when it cannot bind.
void serve_dashboard(Store& store, const std::string& experiment, const DashboardOptions& options);

}  // namespace pbt::report
