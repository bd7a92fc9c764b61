#pragma once
// Keeps a lease alive from a background thread while the worker's main thread trains.
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "pbt/error.hpp"
#include "pbt/store.hpp"

namespace pbt {

class Heartbeat {
 public:
  // Heartbeats come at least this often and at most this rarely, whatever lease_seconds is:
  // a third of an infinite (or 1e300 s) lease overflows std::chrono's clock arithmetic and
  // made wait_for return at once, so the thread committed heartbeats in a tight loop.
  static constexpr double kMinPeriodSeconds = 0.05;
  static constexpr double kMaxPeriodSeconds = 3600;

  // The wait between two heartbeats for a lease of lease_seconds (a third of it, clamped).
  static std::chrono::milliseconds period(double lease_seconds) {
    double p = lease_seconds / 3.0;
    if (std::isnan(p) || p < kMinPeriodSeconds) p = kMinPeriodSeconds;
    if (p > kMaxPeriodSeconds) p = kMaxPeriodSeconds;
    return std::chrono::milliseconds(std::llround(p * 1000.0));
  }

  Heartbeat(Store& store, const Lease& lease, double lease_seconds, const std::function<void(const std::string&)>& log)
      : store_(store), lease_(lease), lease_seconds_(lease_seconds), log_(log) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Heartbeat() { stop(); }
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool lost() const { return lost_; }

 private:
  void loop() {
    const auto wait = period(lease_seconds_);
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, wait, [this] { return stopping_; })) {
      try {
        store_.heartbeat(lease_, lease_seconds_);
      } catch (const LeaseLost&) {
        lost_ = true;
        return;
      } catch (const std::exception& e) {
        // The store may be briefly unreachable: keep trying until the lease runs out.
        if (log_) log_(std::string("heartbeat failed (will retry): ") + e.what());
      }
    }
  }

  Store& store_;
  Lease lease_;
  double lease_seconds_;
  const std::function<void(const std::string&)>& log_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> lost_{false};
};

}  // namespace pbt
