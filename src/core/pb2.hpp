#pragma once
// PB2 (Parker-Holder et al., "Provably Efficient Online Hyperparameter Optimization with
// Population-Based Bandits", NeurIPS 2020): explore chooses the new h by a time-varying
// Gaussian-process bandit (UCB) fit to the population's improvement per interval.
// The GP is here (Eigen stays inside pb2.cpp) so that the unit tests can reach it.
#include <memory>
#include <optional>
#include <vector>

#include "pbt/options.hpp"
#include "pbt/strategy.hpp"

namespace pbt::pb2 {

// The time-varying kernel k((t,h),(t',h')) = exp(-|h-h'|^2 / (2 lengthscale^2)) *
// (1-eps)^(|t-t'|/2), signal variance 1 (y is standardised), plus `noise` on the diagonal.
struct KernelParams {
  double lengthscale = 0.2;
  double eps = 0.1;
  double noise = 0.1;
};

// A point: x[0] is t (in intervals), x[1..] is h normalised to [0, 1].
using Point = std::vector<double>;

class TimeVaryingGp {
 public:
  // Fits to (x, y): y standardised, then the kernel's lengthscale, noise and (unless `eps`
  // is given) eps chosen on a small grid by the log marginal likelihood. Needs >= 1 point.
  TimeVaryingGp(std::vector<Point> x, std::vector<double> y, std::optional<double> eps = std::nullopt);
  ~TimeVaryingGp();
  TimeVaryingGp(TimeVaryingGp&&) noexcept;

  // Points being evaluated now (the h of members in training): they shrink the variance
  // near them but leave the mean alone (PB2's batch UCB, which gives each the posterior
  // mean as its value).
  void add_pending(const std::vector<Point>& pending);

  double mean(const Point& x) const;  // in y's units
  double sd(const Point& x) const;    // of the latent function, in y's units
  // mean + sqrt(beta) * sd, both standardised, for each x.
  std::vector<double> ucb(const std::vector<Point>& xs, double beta) const;
  const KernelParams& params() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct Settings {
  double beta = 1.0;              // beta_t = beta * log(1 + t), t in intervals
  std::optional<double> eps;      // fixed time decay; none: fitted
  std::int64_t candidates = 256;  // random points of the box
  std::int64_t refine = 20;       // local steps around the best of them
  std::int64_t max_points = 128;  // most recent intervals the GP is fit to
};

Settings read_settings(Options& o);
std::unique_ptr<Explore> make(const Settings& s);

}  // namespace pbt::pb2
