// Explore strategies: how a member changes the h it copied.
#include <algorithm>
#include <cmath>

#include "pbt/options.hpp"
#include "pbt/strategy.hpp"

namespace pbt {

namespace {

// Moves a categorical one place (ordered) or redraws it (unordered).
Value step_categorical(const Param& p, const Value& v, Rng& rng) {
  if (!p.ordered || p.choices.size() < 2) return p.sample(rng);
  auto it = std::find(p.choices.begin(), p.choices.end(), std::get<std::string>(v));
  auto i = static_cast<std::int64_t>(it - p.choices.begin());
  const auto last = static_cast<std::int64_t>(p.choices.size()) - 1;
  std::int64_t j = (uniform01(rng) < 0.5) ? i - 1 : i + 1;
  if (j < 0) j = 1;          // at an end the only neighbour is inward
  if (j > last) j = last - 1;
  return p.choices[j];
}

// Perturb: each value times a factor drawn from `factors`; with `resample_probability`,
// redraw it from the prior instead (the paper's combination).
class Perturb : public Explore {
 public:
  using Explore::explore;
  Perturb(std::vector<double> factors, double resample_p) : factors_(std::move(factors)), resample_p_(resample_p) {}
  Hyperparams explore(const Hyperparams& h, const SearchSpace& space, Rng& rng) const override {
    Hyperparams out = h;
    for (const auto& p : space.params()) {
      const Value& v = h.at(p.name);
      if (resample_p_ > 0 && uniform01(rng) < resample_p_) {
        out[p.name] = p.sample(rng);
      } else if (p.kind == Param::Kind::Categorical) {
        out[p.name] = step_categorical(p, v, rng);
      } else {
        double f = factors_[uniform_index(rng, factors_.size())];
        out[p.name] = p.clip(as_double(v) * f);
      }
    }
    return out;
  }
  std::string name() const override { return "perturb"; }

 private:
  std::vector<double> factors_;
  double resample_p_;
};

// Resample: each value redrawn from its prior with `probability`, else kept.
class Resample : public Explore {
 public:
  using Explore::explore;
  explicit Resample(double p) : p_(p) {}
  Hyperparams explore(const Hyperparams& h, const SearchSpace& space, Rng& rng) const override {
    Hyperparams out = h;
    for (const auto& p : space.params())
      if (uniform01(rng) < p_) out[p.name] = p.sample(rng);
    return out;
  }
  std::string name() const override { return "resample"; }

 private:
  double p_;
};

// Additive Gaussian noise (the toy problem's explore). Log-scale values get the noise
// in log space; categoricals take a neighbour step.
class Gaussian : public Explore {
 public:
  using Explore::explore;
  explicit Gaussian(double sigma) : sigma_(sigma) {}
  Hyperparams explore(const Hyperparams& h, const SearchSpace& space, Rng& rng) const override {
    Hyperparams out = h;
    for (const auto& p : space.params()) {
      const Value& v = h.at(p.name);
      if (p.kind == Param::Kind::Categorical) {
        out[p.name] = step_categorical(p, v, rng);
        continue;
      }
      const double noise = sigma_ * standard_normal(rng);
      const double x = as_double(v);
      out[p.name] = p.clip(p.log ? std::exp(std::log(x) + noise) : x + noise);
    }
    return out;
  }
  std::string name() const override { return "gaussian"; }

 private:
  double sigma_;
};

class NoExplore : public Explore {
 public:
  using Explore::explore;
  Hyperparams explore(const Hyperparams& h, const SearchSpace&, Rng&) const override { return h; }
  std::string name() const override { return "none"; }
};

double probability(Options& o, const std::string& key, double def) {
  double p = o.number(key, def);
  if (!(p >= 0 && p <= 1)) throw ConfigError(o.path(key), "must be a probability in [0, 1], got " + std::to_string(p));
  return p;
}

}  // namespace

std::unique_ptr<Explore> make_explore(const std::string& name, const nlohmann::json& options,
                                      const std::string& where) {
  Options o(options, where);
  std::unique_ptr<Explore> e;
  if (name == "perturb") {
    auto factors = o.numbers("factors", {0.8, 1.2});
    if (factors.empty()) throw ConfigError(o.path("factors"), "needs at least one factor");
    for (double f : factors)
      if (!(f > 0) || !std::isfinite(f))
        throw ConfigError(o.path("factors"), "factors must be positive numbers, got " + std::to_string(f));
    e = std::make_unique<Perturb>(factors, probability(o, "resample_probability", 0.0));
  } else if (name == "resample") {
    e = std::make_unique<Resample>(probability(o, "probability", 0.25));
  } else if (name == "gaussian") {
    double sigma = o.number("sigma", 0.1);
    if (!(sigma > 0) || !std::isfinite(sigma)) throw ConfigError(o.path("sigma"), "must be a positive number");
    e = std::make_unique<Gaussian>(sigma);
  } else if (name == "none") {
    e = std::make_unique<NoExplore>();
  } else {
    throw ConfigError(where + ".strategy", "unknown explore strategy '" + name +
                                               "' (known: perturb, resample, gaussian, none)");
  }
  o.finish();
  return e;
}

}  // namespace pbt
