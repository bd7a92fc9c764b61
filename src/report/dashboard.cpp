#include "report/dashboard.hpp"

#include <chrono>
#include <mutex>
#include <thread>

#include <httplib.h>

#include "pbt/error.hpp"
#include "report/report.hpp"

namespace pbt::report {

namespace {

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr == "::1" || addr.rfind("127.", 0) == 0;
}

// The Host header's name, without the port.
std::string host_name(const std::string& host) {
  if (!host.empty() && host.front() == '[') {
    auto end = host.find(']');
    return end == std::string::npos ? host : host.substr(0, end + 1);
  }
  return host.substr(0, host.find(':'));
}

}  // namespace

void serve_dashboard(Store& store, const std::string& experiment, const DashboardOptions& opt) {
  httplib::Server svr;
  std::mutex mu;  // one store read at a time; the cached JSON with it
  std::string cached_json;
  auto cached_at = std::chrono::steady_clock::time_point{};
  bool have_cache = false;

  PageOptions page;
  page.live = true;
  page.refresh_ms = opt.refresh_ms;

  const bool loopback = is_loopback(opt.bind);
  svr.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
    if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.set_header("Allow", "GET, HEAD");
      res.set_content("the dashboard is read-only: GET only\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    // Bound to loopback: refuse requests addressed to another name (DNS rebinding).
    if (loopback) {
      const std::string h = host_name(req.get_header_value("Host"));
      if (!(h == "localhost" || h == "[::1]" || h.rfind("127.", 0) == 0)) {
        res.status = 403;
        res.set_content("this dashboard answers only to localhost\n", "text/plain");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr.set_default_headers({
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"Cache-Control", "no-store"},
  });

  auto fail = [](httplib::Response& res, const std::exception& e) {
    res.status = 503;
    res.set_content(std::string("cannot read the run: ") + e.what() + "\n", "text/plain; charset=utf-8");
  };

  svr.Get("/", [&](const httplib::Request&, httplib::Response& res) {
    try {
      std::lock_guard<std::mutex> lock(mu);
      res.set_content(render_html(read_run(store, experiment), page), "text/html; charset=utf-8");
    } catch (const std::exception& e) {
      fail(res, e);
    }
  });
  svr.Get("/data.json", [&](const httplib::Request&, httplib::Response& res) {
    try {
      std::lock_guard<std::mutex> lock(mu);
      const auto now = std::chrono::steady_clock::now();
      if (!have_cache || now - cached_at > std::chrono::duration<double>(opt.cache_seconds)) {
        cached_json = script_json(page_data(read_run(store, experiment), page));
        cached_at = now;
        have_cache = true;
      }
      res.set_content(cached_json, "application/json");
    } catch (const std::exception& e) {
      fail(res, e);
    }
  });
  // The static report of the run as it is now, to keep.
  svr.Get("/report.html", [&](const httplib::Request&, httplib::Response& res) {
    try {
      std::lock_guard<std::mutex> lock(mu);
      res.set_content(render_html(read_run(store, experiment), PageOptions{}), "text/html; charset=utf-8");
      res.set_header("Content-Disposition", "attachment; filename=\"report.html\"");
    } catch (const std::exception& e) {
      fail(res, e);
    }
  });

  int port = opt.port;
  if (port == 0) {
    port = svr.bind_to_any_port(opt.bind);
  } else if (!svr.bind_to_port(opt.bind, port)) {
    port = -1;
  }
  if (port <= 0)
    throw Error("cannot listen on " + opt.bind + ":" + std::to_string(opt.port) +
                " (is the port in use? choose another with --port)");
  std::thread server([&] { svr.listen_after_bind(); });
  const std::string host = opt.bind.find(':') != std::string::npos ? "[" + opt.bind + "]" : opt.bind;
  if (opt.on_listen) opt.on_listen("http://" + host + ":" + std::to_string(port) + "/", port);
  while (!(opt.stop && opt.stop->load())) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  svr.stop();
  server.join();
}

}  // namespace pbt::report
