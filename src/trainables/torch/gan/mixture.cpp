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

namespace {

double log_add(double a, double b) {  // log(e^a + e^b)
  const double hi = std::max(a, b);
  return hi == -HUGE_VAL ? hi : hi + std::log1p(std::exp(std::min(a, b) - hi));
}

// One point's log p(y|x) over the components into `row`; returns the log of the sum it was
// normalised by, of the terms -|x - mean|^2 / (2 std^2). A non-finite point (or one too far
// for doubles) says nothing about its class: a uniform row, and -inf returned.
double component_log_posterior(const Mixture& m, const Point& p, std::vector<double>& row) {
  const double inv2var = 1.0 / (2 * m.std * m.std);
  double top = -HUGE_VAL;
  for (int c = 0; c < m.modes(); ++c) {
    const double dx = p[0] - m.means[c][0], dy = p[1] - m.means[c][1];
    row[c] = -(dx * dx + dy * dy) * inv2var;  // equal weights and variances: the rest cancels
    top = std::max(top, row[c]);
  }
  if (!std::isfinite(top)) {
    std::fill(row.begin(), row.end(), -std::log(static_cast<double>(m.modes())));
    return -HUGE_VAL;
  }
  double z = 0;
  for (double v : row) z += std::exp(v - top);
  const double lz = top + std::log(z);
  for (double& v : row) v -= lz;
  return lz;
}

}  // namespace

std::vector<std::vector<double>> true_log_posterior(const Mixture& m, const std::vector<Point>& x) {
  std::vector<std::vector<double>> out(x.size(), std::vector<double>(m.modes()));
  for (std::size_t i = 0; i < x.size(); ++i) component_log_posterior(m, x[i], out[i]);
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
  // Joint log densities, each hypothesis with prior 1/2: the mixture (its density is
  // sum_c exp(term_c) / (k 2 pi std^2)) or not data.
  const double log_mixture = std::log(0.5 / k) - std::log(2 * pi * m.std * m.std);
  const double log_not_data = std::log(0.5) - std::log(data_box(m).area());
  const double log_share = -std::log(static_cast<double>(k));
  std::vector<std::vector<double>> out(x.size(), std::vector<double>(k));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double log_data = log_mixture + component_log_posterior(m, x[i], out[i]);
    const double evidence = log_add(log_data, log_not_data);
    const double shared = log_not_data - evidence + log_share;  // log of p(not data | x) / k
    for (double& v : out[i]) v = log_add(log_data - evidence + v, shared);
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
