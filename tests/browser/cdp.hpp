#pragma once
// A headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
// the browser reads commands on fd 3 and writes replies and events on fd 4, each message
// JSON ended by a NUL). Only Debian's chromium is needed: no Node, no driver binaries.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace cdp {

using json = nlohmann::json;

inline std::chrono::steady_clock::time_point deadline_in(double seconds) {
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
}

inline std::string base64_decode(const std::string& in) {
  static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (unsigned char c : in) {
    auto p = chars.find(static_cast<char>(c));
    if (p == std::string::npos) continue;  // '=' and line breaks
    val = (val << 6) + static_cast<int>(p);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

// The flags the tests run Chromium with (the list, plus the pipe).
inline std::vector<std::string> chromium_args(const std::string& exe, const std::string& user_data_dir) {
  return {exe,
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--disable-quic",
          "--disable-dev-shm-usage",
          "--hide-scrollbars",
          "--user-data-dir=" + user_data_dir,
          "--remote-debugging-pipe",
          "about:blank"};
}

class Browser {
 public:
  // Starts Chromium with a fresh, empty profile in `user_data_dir`; its own output goes to `log`.
  Browser(const std::string& exe, const std::string& user_data_dir, const std::string& log) {
    std::filesystem::remove_all(user_data_dir);
    std::filesystem::create_directories(user_data_dir);
    int to[2], from[2];
    if (pipe(to) != 0 || pipe(from) != 0) throw std::runtime_error("pipe failed");
    const auto args = chromium_args(exe, user_data_dir);
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Move the pipe ends out of the way, then onto fds 3 (commands in) and 4 (replies out).
      int in = fcntl(to[0], F_DUPFD, 10), out = fcntl(from[1], F_DUPFD, 10);
      int lg = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int nul = open("/dev/null", O_RDONLY);
      dup2(nul, 0);
      if (lg >= 0) {
        dup2(lg, 1);
        dup2(lg, 2);
      }
      dup2(in, 3);
      dup2(out, 4);
      for (int fd = 5; fd < 1024; ++fd) close(fd);
      std::vector<char*> argv;
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(to[0]);
    close(from[1]);
    out_ = to[1];
    in_ = from[0];
    signal(SIGPIPE, SIG_IGN);
  }

  ~Browser() {
    try {
      send("Browser.close", json::object(), "", false);
    } catch (...) {
    }
    close(out_);
    for (int i = 0; i < 50; ++i) {  // up to 5 s to exit by itself
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        close(in_);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    close(in_);
  }

  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;

  // Sends a command and waits for its reply; events that arrive meanwhile are kept.
  json call(const std::string& method, const json& params = json::object(), const std::string& session = "",
            double timeout_s = 30) {
    const int id = send(method, params, session, true);
    const auto deadline = deadline_in(timeout_s);
    while (true) {
      json m = next(deadline, method);
      if (m.contains("id") && m["id"] == id) {
        if (m.contains("error")) throw std::runtime_error(method + " failed: " + m["error"].dump());
        return m.value("result", json::object());
      }
      events.push_back(std::move(m));
    }
  }

  // Waits for an event (already received or to come) of this method and session.
  json wait_event(const std::string& method, const std::string& session, double timeout_s) {
    for (std::size_t i = seen_; i < events.size(); ++i)
      if (events[i].value("method", "") == method && events[i].value("sessionId", "") == session) {
        seen_ = i + 1;
        return events[i];
      }
    const auto deadline = deadline_in(timeout_s);
    while (true) {
      json m = next(deadline, "event " + method);
      events.push_back(m);
      if (m.value("method", "") == method && m.value("sessionId", "") == session) {
        seen_ = events.size();
        return m;
      }
    }
  }

  // Reads whatever arrives within `seconds` into `events`.
  void pump(double seconds) {
    const auto deadline = deadline_in(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      json m;
      if (!try_next(deadline, m)) break;
      events.push_back(std::move(m));
    }
  }

  std::vector<json> events;  // every event received, in order

 private:
  int send(const std::string& method, const json& params, const std::string& session, bool check) {
    json m = {{"id", ++next_id_}, {"method", method}, {"params", params}};
    if (!session.empty()) m["sessionId"] = session;
    std::string text = m.dump();
    text.push_back('\0');
    std::size_t off = 0;
    while (off < text.size()) {
      ssize_t n = write(out_, text.data() + off, text.size() - off);
      if (n <= 0) {
        if (check) throw std::runtime_error("the browser is gone (writing " + method + ")");
        return next_id_;
      }
      off += static_cast<std::size_t>(n);
    }
    return next_id_;
  }

  bool try_next(std::chrono::steady_clock::time_point deadline, json& out) {
    while (true) {
      auto nul = buf_.find('\0');
      if (nul != std::string::npos) {
        out = json::parse(buf_.substr(0, nul));
        buf_.erase(0, nul + 1);
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{in_, POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
      if (r < 0 && errno != EINTR) throw std::runtime_error("poll failed");
      if (r <= 0) continue;
      char chunk[65536];
      ssize_t n = read(in_, chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error("the browser closed its pipe (did it crash? see its log)");
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  json next(std::chrono::steady_clock::time_point deadline, const std::string& waiting_for) {
    json m;
    if (!try_next(deadline, m)) throw std::runtime_error("timed out waiting for " + waiting_for);
    return m;
  }

  pid_t pid_ = -1;
  int out_ = -1, in_ = -1;
  int next_id_ = 0;
  std::size_t seen_ = 0;
  std::string buf_;
};

// One tab, attached with its own session; console, errors and requests are recorded.
class Page {
 public:
  Page(Browser& b, int width = 1400, int height = 1000) : b_(b) {
    const std::string target = b_.call("Target.createTarget", {{"url", "about:blank"}})["targetId"];
    session_ = b_.call("Target.attachToTarget", {{"targetId", target}, {"flatten", true}})["sessionId"];
    for (const char* domain : {"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"})
      b_.call(domain, json::object(), session_);
    b_.call("Emulation.setDeviceMetricsOverride",
            {{"width", width}, {"height", height}, {"deviceScaleFactor", 1}, {"mobile", false}}, session_);
  }

  void navigate(const std::string& url, double timeout_s = 60) {
    json r = b_.call("Page.navigate", {{"url", url}}, session_);
    if (r.contains("errorText"))
      throw std::runtime_error("cannot open " + url + ": " + r["errorText"].get<std::string>());
    b_.wait_event("Page.loadEventFired", session_, timeout_s);
  }

  // Evaluates an expression in the page and returns its value (promises awaited).
  json eval(const std::string& expr, double timeout_s = 30) {
    json r = b_.call("Runtime.evaluate", {{"expression", expr}, {"returnByValue", true}, {"awaitPromise", true}},
                     session_, timeout_s);
    if (r.contains("exceptionDetails"))
      throw std::runtime_error("evaluating '" + expr + "': " + r["exceptionDetails"].dump());
    return r["result"].value("value", json());
  }

  // Polls an expression until it is true.
  bool wait_for(const std::string& expr, double timeout_s) {
    const auto deadline = deadline_in(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      if (eval("!!(" + expr + ")") == true) return true;
      b_.pump(0.1);
    }
    return false;
  }

  // The whole page as a PNG.
  void screenshot(const std::string& path) {
    json m = b_.call("Page.getLayoutMetrics", json::object(), session_);
    const json size = m.contains("cssContentSize") ? m["cssContentSize"] : m["contentSize"];
    json clip = {{"x", 0}, {"y", 0}, {"width", size["width"]}, {"height", size["height"]}, {"scale", 1}};
    json r = b_.call("Page.captureScreenshot", {{"format", "png"}, {"captureBeyondViewport", true}, {"clip", clip}},
                     session_, 60);
    std::ofstream(path, std::ios::binary) << base64_decode(r["data"].get<std::string>());
  }

  // Console errors, uncaught exceptions, error log entries and dialogs (alert etc.) so far.
  std::vector<std::string> errors() {
    b_.pump(0.2);
    std::vector<std::string> out;
    for (const auto& e : b_.events) {
      if (e.value("sessionId", "") != session_) continue;
      const std::string m = e.value("method", "");
      const json& p = e.contains("params") ? e["params"] : json::object();
      if (m == "Runtime.exceptionThrown") out.push_back("exception: " + p.dump());
      if (m == "Runtime.consoleAPICalled" && (p.value("type", "") == "error" || p.value("type", "") == "assert"))
        out.push_back("console." + p.value("type", "") + ": " + p["args"].dump());
      if (m == "Log.entryAdded" && p["entry"].value("level", "") == "error")
        out.push_back("log: " + p["entry"].value("text", "") + " " + p["entry"].value("url", ""));
      if (m == "Page.javascriptDialogOpening") out.push_back("dialog: " + p.value("message", ""));
    }
    return out;
  }

  // Every URL the page asked for.
  std::vector<std::string> requests() {
    b_.pump(0.2);
    std::vector<std::string> out;
    for (const auto& e : b_.events)
      if (e.value("sessionId", "") == session_ && e.value("method", "") == "Network.requestWillBeSent")
        out.push_back(e["params"]["request"].value("url", ""));
    return out;
  }

 private:
  Browser& b_;
  std::string session_;
};

}  // namespace cdp
