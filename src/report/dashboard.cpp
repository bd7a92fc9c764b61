#include "pbt/dashboard.hpp"

#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <sys/socket.h>

#include <httplib.h>

#include "pbt/error.hpp"
#include "pbt/report.hpp"
#include "report/html.hpp"

namespace pbt::report {

namespace {

// A literal in 127.0.0.0/8, parsed strictly: four decimal octets, no leading zeros (which
// some resolvers read as octal), nothing around them.
bool is_loopback_ipv4(const std::string& s) {
  int octets = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t j = i;
    while (j < s.size() && j - i < 4 && s[j] >= '0' && s[j] <= '9') ++j;
    const std::size_t len = j - i;
    if (len == 0 || len > 3 || (len > 1 && s[i] == '0')) return false;
    const int v = std::stoi(s.substr(i, len));
    if (v > 255 || (octets == 0 && v != 127)) return false;
    ++octets;
    if (j == s.size()) return octets == 4;
    if (s[j] != '.' || octets == 4) return false;
    i = j + 1;
  }
}

bool is_loopback(const std::string& addr) { return addr == "localhost" || addr == "::1" || is_loopback_ipv4(addr); }

// Whether a Host header names this loopback server: exactly `localhost`, a 127.x.y.z literal,
// `[::1]` or the bound address, each with an optional all-digit port. Anything else (a
// rebinding page's `127.0.0.1.evil.example`, `127.0.0.1@evil.example`) is another site.
bool is_loopback_host(const std::string& host, const std::string& bound) {
  std::string name = host;
  const std::size_t colon = host.rfind(':');
  const std::size_t bracket = host.rfind(']');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    const std::string port = host.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
    name = host.substr(0, colon);
  }
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));  // names ignore case
  if (name == "localhost" || name == "[::1]" || is_loopback_ipv4(name)) return true;
  return !bound.empty() && (name == bound || name == "[" + bound + "]");
}

// The server's requests run on a pool of threads, one per connection while it is open. A
// slow client (a header byte a second) keeps its thread for as long as it likes, whatever
// the timeouts: the pool grows with the connections, up to kMaxHandlers, so that a few
// dozen such clients and a crowd of idle connections (dropped after the keep-alive timeout)
// leave threads for the page. Past the cap, connections wait for a free thread.
class GrowingPool : public httplib::TaskQueue {
 public:
  static constexpr std::size_t kMaxHandlers = 256;

  ~GrowingPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(fn));
    if (jobs_.size() > idle_ && threads_.size() < kMaxHandlers) threads_.emplace_back([this] { work(); });
    cv_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      ++idle_;
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      --idle_;
      if (jobs_.empty()) return;  // stopping, nothing left to serve
      auto fn = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;
  bool stopping_ = false;
};

// The library listens with a backlog of 5: a burst of connections overflows it, and each
// one dropped waits out the client's SYN retries (a second or more), a page load included.
class Server : public httplib::Server {
 public:
  void widen_backlog() { ::listen(svr_sock_, static_cast<int>(GrowingPool::kMaxHandlers)); }
};

}  // namespace

void serve_dashboard(Store& store, const std::string& experiment, const DashboardOptions& opt) {
  Server svr;
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
      if (!is_loopback_host(req.get_header_value("Host"), opt.bind)) {
        res.status = 403;
        res.set_content("this dashboard answers only to localhost\n", "text/plain");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Bounded work per connection: short reads and writes, idle keep-alive connections
  // dropped after a few seconds, no request body (GET only), threads as above.
  svr.set_read_timeout(5);
  svr.set_write_timeout(5);
  svr.set_keep_alive_timeout(3);
  svr.set_keep_alive_max_count(20);
  svr.set_payload_max_length(4096);
  svr.new_task_queue = [] { return new GrowingPool; };
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
  svr.widen_backlog();
  std::thread server([&] { svr.listen_after_bind(); });
  const std::string host = opt.bind.find(':') != std::string::npos ? "[" + opt.bind + "]" : opt.bind;
  if (opt.on_listen) opt.on_listen("http://" + host + ":" + std::to_string(port) + "/", port);
  while (!(opt.stop && opt.stop->load())) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  svr.stop();
  server.join();
}

}  // namespace pbt::report
