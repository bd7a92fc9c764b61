// The dashboard's server (src/report/dashboard.cpp) over real loopback sockets: which Host
// names it answers to, and that slow and idle connections do not keep the page from others.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "pbt/dashboard.hpp"
#include "pbt/pbt.hpp"
#include "common/toy_config.hpp"

using namespace pbt;

namespace {

const std::string kConfig = test::ToyConfig("dash").population(2).steps(8);

// A dashboard on 127.0.0.1, any free port, for the test's lifetime.
class Dashboard {
 public:
  Dashboard() : store_(open_store("memory:")) {
    create_or_join(*store_, parse_config(kConfig, "dash.toml"));
    report::DashboardOptions opt;
    opt.port = 0;
    opt.on_listen = [this](const std::string&, int port) { port_ = port; };
    opt.stop = &stop_;
    server_ = std::thread([this, opt] { report::serve_dashboard(*store_, "dash", opt); });
    for (int i = 0; i < 600 && port_ == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ~Dashboard() {
    stop_ = true;
    server_.join();
  }
  int port() const { return port_; }

 private:
  std::unique_ptr<Store> store_;
  std::atomic<bool> stop_{false};
  std::atomic<int> port_{0};
  std::thread server_;
};

// A connected loopback socket, or -1.
int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& s) {
  std::size_t sent = 0;
  while (sent < s.size()) {
    const ssize_t n = send(fd, s.data() + sent, s.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

// Sends `request` and returns the response's status code: 0 when nothing came back
// before the deadline (or the connection failed).
int status_of(int port, const std::string& request, std::chrono::seconds deadline) {
  const int fd = connect_to(port);
  if (fd < 0) return 0;
  int status = 0;
  if (send_all(fd, request)) {
    std::string got;
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (got.find("\r\n") == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[512];
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    if (got.rfind("HTTP/1.1 ", 0) == 0 && got.size() >= 12) status = std::stoi(got.substr(9, 3));
  }
  close(fd);
  return status;
}

int get_with_host(int port, const std::string& host) {
  return status_of(port, "GET /data.json HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n",
                   std::chrono::seconds(60));
}

}  // namespace

TEST(Dashboard, AnswersOnlyToExactLoopbackHostNames) {
  Dashboard d;
  ASSERT_GT(d.port(), 0);
  const std::string port = std::to_string(d.port());
  for (const std::string& good :
       std::vector<std::string>{"localhost", "localhost:" + port, "127.0.0.1", "127.0.0.1:" + port, "127.1.2.3:8080",
                                "127.255.255.255", "[::1]", "[::1]:" + port, "LocalHost:" + port})
    EXPECT_EQ(get_with_host(d.port(), good), 200) << good;
  // What a DNS-rebinding page (or a confused parser) could send.
  for (const std::string& bad : std::vector<std::string>{"127.0.0.1.evil.example",
                                                         "127.0.0.1.evil.example:" + port,
                                                         "127.0.0.1@evil.example",
                                                         "127.0.0.1:" + port + "@evil.example",
                                                         "localhost.evil.example",
                                                         "evil.example",
                                                         "evil.example:" + port,
                                                         "127.evil.example",
                                                         "127.0.0",
                                                         "127.0.0.1.1",
                                                         "127.0.0.256",
                                                         "0177.0.0.1",
                                                         "127.0.0.01",
                                                         "128.0.0.1",
                                                         "127.0.0.1:",
                                                         "127.0.0.1:8o80",
                                                         "127.0.0.1:123456",
                                                         "[::1].evil.example",
                                                         "[::1]evil",
                                                         "[::2]",
                                                         "localhost:80:80"})
    EXPECT_EQ(get_with_host(d.port(), bad), 403) << "'" << bad << "'";
  // No Host at all (HTTP/1.0): not a name we know.
  EXPECT_EQ(status_of(d.port(), "GET /data.json HTTP/1.0\r\n\r\n", std::chrono::seconds(60)), 403);
}

// 200 connections that never send a byte and 50 that send their headers a byte a second
// (slow loris): a page request from another client is still answered. Before, the server's
// 8 threads were all held by these, and the page never came.
TEST(Dashboard, SlowAndIdleClientsDoNotStarveThePage) {
  Dashboard d;
  ASSERT_GT(d.port(), 0);
  std::vector<int> idle, slow;
  for (int i = 0; i < 200; ++i) {
    const int fd = connect_to(d.port());
    if (fd >= 0) idle.push_back(fd);
  }
  for (int i = 0; i < 50; ++i) {
    const int fd = connect_to(d.port());
    if (fd >= 0) slow.push_back(fd);
  }
  EXPECT_EQ(idle.size(), 200u);
  EXPECT_EQ(slow.size(), 50u);
  std::atomic<bool> done{false};
  std::thread trickle([&] {
    const std::string head = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    for (std::size_t i = 0; i < 120 && !done; ++i) {  // at most two minutes
      const char byte = i < head.size() ? head[i] : 'a';
      for (int fd : slow) send(fd, &byte, 1, MSG_NOSIGNAL);
      for (int k = 0; k < 10 && !done; ++k) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(3));  // the slow clients are well under way
  const auto start = std::chrono::steady_clock::now();
  const int status =
      status_of(d.port(), "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", std::chrono::seconds(30));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(status, 200) << "no answer after " << waited << " s";
  RecordProperty("page_seconds", std::to_string(waited));
  done = true;
  trickle.join();
  for (int fd : idle) close(fd);
  for (int fd : slow) close(fd);
}
