#pragma once
// The database backends' retry loop: a transient failure (a lock, a conflict, a lost
// connection) repeats the whole operation after a jittered, doubling pause, for a bounded
// time; then the backend reports how many attempts it made in how long.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>

namespace pbt::store_codec {

class Retry {
 public:
  // Keeps retrying for `seconds` in all, the first pause about `first_pause` seconds.
  Retry(double seconds, double first_pause) : seconds_(seconds), backoff_(first_pause) {}

  // After a failed attempt: false when the time is up (then spent() says what it took);
  // otherwise pauses (never past the deadline by much) and doubles the pause up to `max_pause`.
  bool wait(double max_pause) {
    elapsed_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (elapsed_ >= seconds_) return false;
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    const double pause = std::min(backoff_ * jitter(rng), std::max(0.0, seconds_ - elapsed_) + 0.001);
    std::this_thread::sleep_for(std::chrono::duration<double>(pause));
    backoff_ = std::min(backoff_ * 2, max_pause);
    ++attempt_;
    return true;
  }

  // "3 attempts in 1.2 s", as of the last wait().
  std::string spent() const {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1f", elapsed_);
    return std::to_string(attempt_) + " attempts in " + seconds + " s";
  }

 private:
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  double seconds_;
  double backoff_;
  double elapsed_ = 0;
  int attempt_ = 1;
};

}  // namespace pbt::store_codec
