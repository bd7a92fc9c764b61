#include "trainables/torch/gan/mixture.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace pbt::gan {

std::string Mixture::key() const {
  std::ostringstream o;
  o.precision(17);
  o << name << ':' << std << ':';
  for (const auto& p : means) o << p[0] << ',' << p[1] << ';';
  return o.str();
}

Mixture make_ring(int modes, double radius, double std) {
  Mixture m{"ring", {}, std};
  const double pi = std::acos(-1.0);
  for (int k = 0; k < modes; ++k) {
    const double a = 2 * pi * k / modes;
    m.means.push_back({radius * std::cos(a), radius * std::sin(a)});
  }
  return m;
}

Mixture make_grid(int side, double spacing, double std) {
  Mixture m{"grid", {}, std};
  const double c = (side - 1) / 2.0;
  for (int i = 0; i < side; ++i)
    for (int j = 0; j < side; ++j) m.means.push_back({(i - c) * spacing, (j - c) * spacing});
  return m;
}

std::vector<Point> sample(const Mixture& m, std::size_t n, std::mt19937_64& rng, std::vector<int>* labels) {
  std::uniform_int_distribution<int> pick(0, m.modes() - 1);
  std::normal_distribution<double> noise(0.0, m.std);
  std::vector<Point> out(n);
  if (labels) labels->resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int k = pick(rng);
    out[i] = {m.means[k][0] + noise(rng), m.means[k][1] + noise(rng)};
    if (labels) (*labels)[i] = k;
  }
  return out;
}

std::vector<Point> sample_modes(const Mixture& m, const std::vector<int>& components, std::size_t n,
                                std::mt19937_64& rng) {
  std::normal_distribution<double> noise(0.0, m.std);
  std::vector<Point> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& mu = m.means.at(components[i % components.size()]);
    out[i] = {mu[0] + noise(rng), mu[1] + noise(rng)};
  }
  return out;
}

std::vector<std::vector<double>> true_log_posterior(const Mixture& m, const std::vector<Point>& x) {
  const int k = m.modes();
  const double inv2var = 1.0 / (2 * m.std * m.std);
  std::vector<std::vector<double>> out(x.size(), std::vector<double>(k));
  for (std::size_t i = 0; i < x.size(); ++i) {
    auto& row = out[i];
    double top = -HUGE_VAL;
    for (int c = 0; c < k; ++c) {
      const double dx = x[i][0] - m.means[c][0], dy = x[i][1] - m.means[c][1];
      row[c] = -(dx * dx + dy * dy) * inv2var;  // equal weights and variances: the rest cancels
      top = std::max(top, row[c]);
    }
    if (!std::isfinite(top)) {  // a non-finite point says nothing about its class
      std::fill(row.begin(), row.end(), -std::log(static_cast<double>(k)));
      continue;
    }
    double z = 0;
    for (double v : row) z += std::exp(v - top);
    const double lz = top + std::log(z);
    for (double& v : row) v -= lz;
  }
  return out;
}

Box data_box(const Mixture& m) {
  Box b{{HUGE_VAL, HUGE_VAL}, {-HUGE_VAL, -HUGE_VAL}};
  for (const auto& p : m.means)
    for (int c = 0; c < 2; ++c) b.lo[c] = std::min(b.lo[c], p[c]), b.hi[c] = std::max(b.hi[c], p[c]);
  for (int c = 0; c < 2; ++c) {
    const double w = std::max(b.hi[c] - b.lo[c], 6 * m.std);
    b.lo[c] -= w / 2;
    b.hi[c] += w / 2;
  }
  return b;
}

std::vector<std::vector<double>> strict_log_posterior(const Mixture& m, const std::vector<Point>& x) {
  const int k = m.modes();
  const double pi = std::acos(-1.0);
  const double inv2var = 1.0 / (2 * m.std * m.std);
  // Joint log densities, each hypothesis with prior 1/2: a component (1/k of the mixture) or not data.
  const double log_mode = std::log(0.5 / k) - std::log(2 * pi * m.std * m.std);
  const double log_not_data = std::log(0.5) - std::log(data_box(m).area());
  const double log_share = -std::log(static_cast<double>(k));
  std::vector<std::vector<double>> out(x.size(), std::vector<double>(k));
  for (std::size_t i = 0; i < x.size(); ++i) {
    auto& row = out[i];
    if (!std::isfinite(x[i][0]) || !std::isfinite(x[i][1])) {  // says nothing about its class
      std::fill(row.begin(), row.end(), log_share);
      continue;
    }
    double top = log_not_data;
    for (int c = 0; c < k; ++c) {
      const double dx = x[i][0] - m.means[c][0], dy = x[i][1] - m.means[c][1];
      row[c] = log_mode - (dx * dx + dy * dy) * inv2var;
      top = std::max(top, row[c]);
    }
    double z = std::exp(log_not_data - top);
    for (double v : row) z += std::exp(v - top);
    const double lz = top + std::log(z);
    const double shared = log_not_data - lz + log_share;  // log of p(not data | x) / k
    for (double& v : row) {
      const double a = v - lz, hi = std::max(a, shared);
      v = hi + std::log1p(std::exp(std::min(a, shared) - hi));
    }
  }
  return out;
}

double inception_score(const std::vector<std::vector<double>>& lp) {
  if (lp.empty()) return 1.0;
  const std::size_t k = lp[0].size();
  // log p(y) = log mean_x p(y|x), in log space: a p(y|x) far below the smallest double
  // must not make log p(y) -inf while p(y|x) > 0 (the KL would be infinite).
  std::vector<double> log_py(k, -HUGE_VAL);
  for (std::size_t c = 0; c < k; ++c) {
    double top = -HUGE_VAL;
    for (const auto& row : lp) top = std::max(top, row[c]);
    if (!std::isfinite(top)) continue;
    double z = 0;
    for (const auto& row : lp) z += std::exp(row[c] - top);
    log_py[c] = top + std::log(z) - std::log(static_cast<double>(lp.size()));
  }
  double kl = 0;
  for (const auto& row : lp)
    for (std::size_t c = 0; c < k; ++c) {
      const double p = std::exp(row[c]);
      if (p > 0) kl += p * (row[c] - log_py[c]);
    }
  return std::exp(std::max(0.0, kl / lp.size()));
}

MixtureScores score_points(const Mixture& m, const std::vector<Point>& x, double cover_fraction) {
  MixtureScores s;
  if (x.empty()) return s;
  s.inception = inception_score(true_log_posterior(m, x));
  s.strict_inception = inception_score(strict_log_posterior(m, x));
  std::vector<std::size_t> per_mode(m.modes(), 0);
  std::size_t good = 0;
  const double limit = 9 * m.std * m.std;  // (3 std)^2
  for (const auto& p : x) {
    if (!std::isfinite(p[0]) || !std::isfinite(p[1])) {
      s.non_finite++;
      continue;
    }
    int best = 0;
    double best_d = HUGE_VAL;
    for (int c = 0; c < m.modes(); ++c) {
      const double dx = p[0] - m.means[c][0], dy = p[1] - m.means[c][1];
      const double d = dx * dx + dy * dy;
      if (d < best_d) best_d = d, best = c;
    }
    if (best_d <= limit) {
      good++;
      per_mode[best]++;
    }
  }
  s.high_quality = static_cast<double>(good) / x.size();
  const double need = std::max(1.0, cover_fraction * x.size() / m.modes());
  for (auto c : per_mode)
    if (c >= need) s.modes_covered++;
  return s;
}

}  // namespace pbt::gan
