// Explore strategies: how a member changes the h it copied.
#include <algorithm>
#include <cmath>

#include "pbt/registry.hpp"
#include "pbt/strategy.hpp"
#include "core/builtin_strategy.hpp"
#include "core/pb2.hpp"
#include "core/plugin_loading.hpp"

namespace pbt {

namespace {

// Moves a categorical one place (ordered) or redraws it (unordered).
Value step_categorical(const Param& p, const Value& v, Rng& rng) {
  if (!p.ordered || p.choices.size() < 2) return p.sample(rng);
  auto it = std::find(p.choices.begin(), p.choices.end(), std::get<std::string>(v));
  auto i = static_cast<std::int64_t>(it - p.choices.begin());
  const auto last = static_cast<std::int64_t>(p.choices.size()) - 1;
  std::int64_t j = (uniform01(rng) < 0.5) ? i - 1 : i + 1;
  if (j < 0) j = 1;  // at an end the only neighbour is inward
  if (j > last) j = last - 1;
  return p.choices[j];
}

// A new h from `h`, one value at a time: `change(param, value)` gives each param's new value.
template <class Change>
Hyperparams each_value(const Hyperparams& h, const SearchSpace& space, Change change) {
  Hyperparams out = h;
  for (const auto& p : space.params()) out[p.name] = change(p, h.at(p.name));
  return out;
}

// Perturb: each value times a factor drawn from `factors`; with `resample_probability`,
// redraw it from the prior instead (the paper's combination).
class Perturb : public Explore {
 public:
  Perturb(std::vector<double> factors, double resample_p) : factors_(std::move(factors)), resample_p_(resample_p) {}
  Hyperparams explore(const Hyperparams& h, const SearchSpace& space, Rng& rng, const ExploreContext&) const override {
    return each_value(h, space, [&](const Param& p, const Value& v) -> Value {
      if (resample_p_ > 0 && uniform01(rng) < resample_p_) return p.sample(rng);
      if (p.kind == Param::Kind::Categorical) return step_categorical(p, v, rng);
      return p.clip(as_double(v) * factors_[uniform_index(rng, factors_.size())]);
    });
  }
  std::string name() const override { return "perturb"; }

 private:
  std::vector<double> factors_;
  double resample_p_;
};

// Resample: each value redrawn from its prior with `probability`, else kept.
class Resample : public Explore {
 public:
  explicit Resample(double p) : p_(p) {}
  Hyperparams explore(const Hyperparams& h, const SearchSpace& space, Rng& rng, const ExploreContext&) const override {
    return each_value(h, space,
                      [&](const Param& p, const Value& v) { return uniform01(rng) < p_ ? p.sample(rng) : v; });
  }
  std::string name() const override { return "resample"; }

 private:
  double p_;
};

// Additive Gaussian noise (the toy problem's explore). Log-scale values get the noise
// in log space; categoricals take a neighbour step.
class Gaussian : public Explore {
 public:
  explicit Gaussian(double sigma) : sigma_(sigma) {}
  Hyperparams explore(const Hyperparams& h, const SearchSpace& space, Rng& rng, const ExploreContext&) const override {
    return each_value(h, space, [&](const Param& p, const Value& v) -> Value {
      if (p.kind == Param::Kind::Categorical) return step_categorical(p, v, rng);
      const double noise = sigma_ * standard_normal(rng);
      const double x = as_double(v);
      return p.clip(p.log ? std::exp(std::log(x) + noise) : x + noise);
    });
  }
  std::string name() const override { return "gaussian"; }

 private:
  double sigma_;
};

class NoExplore : public Explore {
 public:
  Hyperparams explore(const Hyperparams& h, const SearchSpace&, Rng&, const ExploreContext&) const override {
    return h;
  }
  std::string name() const override { return "none"; }
};

double probability(Options& o, const std::string& key, double def) {
  double p = o.number(key, def);
  if (!(p >= 0 && p <= 1)) throw ConfigError(o.path(key), "must be a probability in [0, 1], got " + std::to_string(p));
  return p;
}

Registry<ExploreFactory>& explores() {
  static Registry<ExploreFactory> r(
      "explore strategy",
      {
          {"perturb", reading_options<Explore>([](Options& o) {
             auto factors = o.numbers("factors", {0.8, 1.2});
             if (factors.empty()) throw ConfigError(o.path("factors"), "needs at least one factor");
             for (double f : factors)
               if (!(f > 0) || !std::isfinite(f))
                 throw ConfigError(o.path("factors"), "factors must be positive numbers, got " + std::to_string(f));
             return std::make_unique<Perturb>(factors, probability(o, "resample_probability", 0.0));
           })},
          {"resample", reading_options<Explore>(
                           [](Options& o) { return std::make_unique<Resample>(probability(o, "probability", 0.25)); })},
          {"gaussian", reading_options<Explore>([](Options& o) {
             double sigma = o.number("sigma", 0.1);
             if (!(sigma > 0) || !std::isfinite(sigma)) throw ConfigError(o.path("sigma"), "must be a positive number");
             return std::make_unique<Gaussian>(sigma);
           })},
          {"pb2", reading_options<Explore>([](Options& o) { return pb2::make(pb2::read_settings(o)); })},
          {"none", reading_options<Explore>([](Options&) { return std::make_unique<NoExplore>(); })},
      });
  return r;
}

}  // namespace

void register_explore(const std::string& name, ExploreFactory factory) {
  detail::check_plugin_registers("explore strategy", name, explores().get(name).has_value());
  explores().add(name, std::move(factory));
}

std::vector<std::string> explore_strategies() { return explores().names(); }

std::unique_ptr<Explore> make_explore(const std::string& name, const nlohmann::json& options,
                                      const std::string& where) {
  return explores().find(name, where + ".strategy")(options, where);
}

}  // namespace pbt
