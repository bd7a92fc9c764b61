// PB2: explore by a time-varying GP bandit over (t, h) -> improvement per step.
#include "core/pb2.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "pbt/error.hpp"

namespace pbt::pb2 {

namespace {

using Eigen::MatrixXd;
using Eigen::VectorXd;

MatrixXd to_matrix(const std::vector<Point>& xs) {
  const Eigen::Index cols = xs.empty() ? 0 : static_cast<Eigen::Index>(xs.front().size());
  MatrixXd m(static_cast<Eigen::Index>(xs.size()), cols);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (static_cast<Eigen::Index>(xs[i].size()) != cols) throw Error("pb2: points of different dimensions");
    for (Eigen::Index j = 0; j < cols; ++j) m(static_cast<Eigen::Index>(i), j) = xs[i][j];
  }
  return m;
}

// Squared distances over h (columns 1..) and |t - t'| (column 0), rows of a against rows of b.
void distances(const MatrixXd& a, const MatrixXd& b, MatrixXd& d2, MatrixXd& dt) {
  const Eigen::Index n = a.rows(), m = b.rows();
  auto diff = [&](Eigen::Index k) { return a.col(k).replicate(1, m) - b.col(k).transpose().replicate(n, 1); };
  dt = diff(0).cwiseAbs();
  d2 = MatrixXd::Zero(n, m);
  for (Eigen::Index k = 1; k < a.cols(); ++k) d2 += diff(k).cwiseAbs2();
}

MatrixXd kernel(const MatrixXd& d2, const MatrixXd& dt, const KernelParams& k) {
  // (1-eps)^(|t-t'|/2) = exp(|t-t'| * log(1-eps) / 2)
  const double a = -0.5 / (k.lengthscale * k.lengthscale);
  const double b = 0.5 * std::log1p(-k.eps);
  return (d2.array() * a + dt.array() * b).exp().matrix();
}

// The grid the kernel's parameters are chosen from: h lies in [0, 1] per dimension, t in
// intervals, y has unit variance. 4 x 3 x 3 = 36 Cholesky factorisations (eps fitted).
constexpr double kLengthscales[] = {0.1, 0.2, 0.4, 0.8};
constexpr double kNoises[] = {0.01, 0.1, 0.5};
constexpr double kEpsilons[] = {0.01, 0.05, 0.2};

}  // namespace

struct TimeVaryingGp::Impl {
  MatrixXd x;  // data
  VectorXd y;  // standardised
  double y_mean = 0, y_sd = 1;
  KernelParams k;
  VectorXd alpha;  // K^-1 y over the data: the mean
  MatrixXd xv;     // data and pending: the variance
  Eigen::LLT<MatrixXd> llt_v;

  void factor_variance() {
    MatrixXd d2, dt;
    distances(xv, xv, d2, dt);
    MatrixXd kv = kernel(d2, dt, k);
    kv.diagonal().array() += k.noise;
    llt_v.compute(kv);
    if (llt_v.info() != Eigen::Success) throw Error("pb2: the GP's kernel matrix is not positive definite");
  }

  void predict(const std::vector<Point>& xs, VectorXd& mean, VectorXd& var) const {
    const MatrixXd q = to_matrix(xs);
    if (q.cols() != x.cols()) throw Error("pb2: a query point of the wrong dimension");
    MatrixXd d2, dt;
    distances(x, q, d2, dt);
    mean = kernel(d2, dt, k).transpose() * alpha;
    distances(xv, q, d2, dt);
    const MatrixXd v = llt_v.matrixL().solve(kernel(d2, dt, k));
    var = (1.0 - v.colwise().squaredNorm().array()).max(1e-12).matrix().transpose();
  }
};

TimeVaryingGp::TimeVaryingGp(std::vector<Point> xs, std::vector<double> ys, std::optional<double> eps)
    : impl_(std::make_unique<Impl>()) {
  Impl& g = *impl_;
  if (xs.empty() || xs.size() != ys.size()) throw Error("pb2: the GP needs as many values as points, at least one");
  g.x = to_matrix(xs);
  const auto n = static_cast<Eigen::Index>(ys.size());
  g.y = Eigen::Map<const VectorXd>(ys.data(), n);
  g.y_mean = g.y.mean();
  const double var = (g.y.array() - g.y_mean).square().sum() / static_cast<double>(n);
  g.y_sd = var > 1e-24 ? std::sqrt(var) : 1.0;  // all equal: the mean is flat, UCB follows the variance
  g.y = (g.y.array() - g.y_mean) / g.y_sd;

  MatrixXd d2, dt;
  distances(g.x, g.x, d2, dt);
  std::vector<double> epsilons(std::begin(kEpsilons), std::end(kEpsilons));
  if (eps) epsilons = {*eps};
  // The kernel is a product of a factor in h and one in t: each factor once per value.
  std::vector<MatrixXd> in_h, in_t;
  for (double l : kLengthscales) in_h.push_back((d2.array() * (-0.5 / (l * l))).exp().matrix());
  for (double e : epsilons) in_t.push_back((dt.array() * (0.5 * std::log1p(-e))).exp().matrix());
  double best = -std::numeric_limits<double>::infinity();
  for (std::size_t li = 0; li < in_h.size(); ++li)
    for (std::size_t ei = 0; ei < in_t.size(); ++ei)
      for (double noise : kNoises) {
        const KernelParams kp{kLengthscales[li], epsilons[ei], noise};
        MatrixXd kk = in_h[li].cwiseProduct(in_t[ei]);
        kk.diagonal().array() += noise;
        Eigen::LLT<MatrixXd> llt(kk);
        if (llt.info() != Eigen::Success) continue;
        const VectorXd alpha = llt.solve(g.y);
        // log p(y) = -y'K^-1 y / 2 - log|K| / 2 - n log(2 pi) / 2; the last term is the same for all.
        const double lml = -0.5 * g.y.dot(alpha) - llt.matrixLLT().diagonal().array().log().sum();
        if (lml > best) {  // strictly: the first of equal ones, so the choice is reproducible
          best = lml;
          g.k = kp;
          g.alpha = alpha;
        }
      }
  if (g.alpha.size() != n) throw Error("pb2: no kernel on the grid gave a positive definite matrix");
  g.xv = g.x;
  g.factor_variance();
}

TimeVaryingGp::~TimeVaryingGp() = default;
TimeVaryingGp::TimeVaryingGp(TimeVaryingGp&&) noexcept = default;

void TimeVaryingGp::add_pending(const std::vector<Point>& pending) {
  if (pending.empty()) return;
  Impl& g = *impl_;
  const MatrixXd p = to_matrix(pending);
  if (p.cols() != g.x.cols()) throw Error("pb2: a pending point of the wrong dimension");
  MatrixXd xv(g.xv.rows() + p.rows(), g.xv.cols());
  xv << g.xv, p;
  g.xv = std::move(xv);
  g.factor_variance();
}

double TimeVaryingGp::mean(const Point& x) const {
  VectorXd m, v;
  impl_->predict({x}, m, v);
  return impl_->y_mean + impl_->y_sd * m(0);
}

double TimeVaryingGp::sd(const Point& x) const {
  VectorXd m, v;
  impl_->predict({x}, m, v);
  return impl_->y_sd * std::sqrt(v(0));
}

std::vector<double> TimeVaryingGp::ucb(const std::vector<Point>& xs, double beta) const {
  VectorXd m, v;
  impl_->predict(xs, m, v);
  std::vector<double> out(xs.size());
  const double b = std::sqrt(std::max(beta, 0.0));
  for (std::size_t i = 0; i < xs.size(); ++i)
    out[i] = m(static_cast<Eigen::Index>(i)) + b * std::sqrt(v(static_cast<Eigen::Index>(i)));
  return out;
}

const KernelParams& TimeVaryingGp::params() const { return impl_->k; }

namespace {

// h <-> [0, 1] per hyperparameter, linear in log space where log = true.
double span_low(const Param& p) { return p.log ? std::log(p.low) : p.low; }
double span_high(const Param& p) { return p.log ? std::log(p.high) : p.high; }

double to_unit(const Param& p, double v) {
  const double lo = span_low(p), hi = span_high(p);
  if (!(hi > lo)) return 0;
  const double x = p.log ? std::log(std::max(v, p.low)) : v;
  return std::clamp((x - lo) / (hi - lo), 0.0, 1.0);
}

Value from_unit(const Param& p, double u) {
  const double lo = span_low(p), hi = span_high(p);
  const double x = lo + std::clamp(u, 0.0, 1.0) * (hi - lo);
  return p.clip(p.log ? std::exp(x) : x);  // integers rounded, bounds kept
}

std::string categorical_refusal(const Param& p) {
  return "pb2 models numeric hyperparameters only, and '" + p.name +
         "' is categorical (PB2-Mix, the follow-up paper's bandit over categories, is not implemented here): "
         "use another explore strategy, or declare it as an int";
}

class Pb2 : public Explore {
 public:
  explicit Pb2(Settings s) : s_(s) {}

  void check(const SearchSpace& space, const std::string& where) const override {
    for (const auto& p : space.params())
      if (p.kind == Param::Kind::Categorical) throw ConfigError(where, categorical_refusal(p));
  }
  std::size_t history_intervals() const override { return static_cast<std::size_t>(s_.max_points); }
  std::string name() const override { return "pb2"; }

  Hyperparams explore(const Hyperparams& h, const SearchSpace& space, Rng& rng,
                      const ExploreContext& ctx) const override {
    const std::vector<Param>& params = space.params();
    for (const auto& p : params)
      if (p.kind == Param::Kind::Categorical) throw Error(categorical_refusal(p));
    const auto d = params.size();
    auto point = [&](double t, const Hyperparams& hh, Point& x) {
      x.assign(1, t);
      for (const auto& p : params) {
        auto it = hh.find(p.name);
        if (it == hh.end() || std::holds_alternative<std::string>(it->second)) return false;
        x.push_back(to_unit(p, as_double(it->second)));
      }
      return true;
    };

    // The time unit is the usual interval length, so eps is a decay per interval.
    static const std::vector<TrainedInterval> kNone;
    const std::vector<TrainedInterval>& history = ctx.history ? *ctx.history : kNone;
    std::vector<std::int64_t> lengths;
    for (const auto& i : history)
      if (i.to_step > i.from_step) lengths.push_back(i.to_step - i.from_step);
    double unit = 1;
    if (!lengths.empty()) {
      std::nth_element(lengths.begin(), lengths.begin() + lengths.size() / 2, lengths.end());
      unit = static_cast<double>(lengths[lengths.size() / 2]);
    }

    // The most recent intervals (history is by from_step): the time decay makes older ones count little.
    std::vector<Point> xs;
    std::vector<double> ys;
    const std::size_t first =
        history.size() > static_cast<std::size_t>(s_.max_points) ? history.size() - s_.max_points : 0;
    for (std::size_t k = first; k < history.size(); ++k) {
      const TrainedInterval& i = history[k];
      if (i.to_step <= i.from_step) continue;
      const double y = (i.to_score - i.from_score) / static_cast<double>(i.to_step - i.from_step);
      Point x;
      if (!std::isfinite(y) || !point(static_cast<double>(i.from_step) / unit, i.h, x)) continue;
      xs.push_back(std::move(x));
      ys.push_back(y);
    }

    auto random_point = [&](double t) {
      Point x{t};
      for (std::size_t j = 0; j < d; ++j) x.push_back(uniform01(rng));
      return x;
    };
    auto to_h = [&](const Point& x) {
      Hyperparams out = h;
      for (std::size_t j = 0; j < d; ++j) out[params[j].name] = from_unit(params[j], x[j + 1]);
      return out;
    };

    const double now = static_cast<double>(ctx.step) / unit;
    if (xs.size() < 2) return to_h(random_point(now));  // nothing to fit yet: a draw from the box

    TimeVaryingGp gp(std::move(xs), std::move(ys), s_.eps);
    // Batch UCB: the members in training now, at their current h.
    std::vector<Point> pending;
    if (ctx.population && ctx.population_h)
      for (std::size_t k = 0; k < ctx.population->size() && k < ctx.population_h->size(); ++k) {
        Point x;
        if ((*ctx.population)[k].id != ctx.member && point(now, (*ctx.population_h)[k], x))
          pending.push_back(std::move(x));
      }
    gp.add_pending(pending);
    const double beta = s_.beta * std::log1p(std::max(now, 1.0));

    std::vector<Point> candidates;
    candidates.reserve(static_cast<std::size_t>(s_.candidates));
    for (std::int64_t c = 0; c < s_.candidates; ++c) candidates.push_back(random_point(now));
    const std::vector<double> scores = gp.ucb(candidates, beta);
    const std::size_t at = static_cast<std::size_t>(std::max_element(scores.begin(), scores.end()) - scores.begin());
    Point best = candidates[at];
    double best_score = scores[at];
    // Local refinement: a shrinking Gaussian step around the best, kept when UCB rises.
    double radius = 0.1;
    for (std::int64_t r = 0; r < s_.refine; ++r, radius *= 0.85) {
      Point x = best;
      for (std::size_t j = 1; j <= d; ++j) x[j] = std::clamp(x[j] + radius * standard_normal(rng), 0.0, 1.0);
      const double u = gp.ucb({x}, beta)[0];
      if (u > best_score) {
        best = std::move(x);
        best_score = u;
      }
    }
    return to_h(best);
  }

 private:
  Settings s_;
};

}  // namespace

Settings read_settings(Options& o) {
  Settings s;
  s.beta = o.number("beta", 1.0);
  if (!(s.beta >= 0)) throw ConfigError(o.path("beta"), "must be a number >= 0, got " + Options::number_text(s.beta));
  if (o.has("eps")) {
    const double e = o.number("eps", std::nullopt);
    if (!(e > 0 && e < 1))
      throw ConfigError(o.path("eps"), "must be between 0 and 1 (exclusive), got " + Options::number_text(e));
    s.eps = e;
  }
  s.candidates = o.integer_in("candidates", 256, 1, 100000);
  s.refine = o.integer_in("refine", 20, 0, 100000);
  s.max_points = o.integer_in("max_points", 128, 2, 5000);
  return s;
}

std::unique_ptr<Explore> make(const Settings& s) { return std::make_unique<Pb2>(s); }

}  // namespace pbt::pb2
