// An explore rule a user writes, as a plugin: explore as a built-in strategy does, then make
// the result obey a rule between two hyperparameters, batch >= ratio x minibatch (what Ray Tune
// users ask for: ray-project/ray #18339, #7168). Built as a shared library against pbt's
// headers only (CMake: a MODULE library linking pbt::plugin_api) and named by the config:
//
//   [explore]
//   plugin = "libbatch_rule.so"   # found as [trainable] plugin is: the config's directory,
//   strategy = "batch_rule"       # $PBT_PLUGIN_PATH, pbt's plugin directory
//   base = "perturb"              # the explore it wraps (default perturb) ...
//   factors = [0.8, 1.2]          # ... with that strategy's own options
//   batch = "batch"               # the two hyperparameters (ints or floats in [space]) ...
//   minibatch = "minibatch"
//   ratio = 2.0                   # ... and the rule: batch >= ratio x minibatch
//
// The rule holds for every h explore makes; the initial h come from [space] (or [[initial]]),
// so give the first members h that obey it.
#include <cmath>
#include <memory>
#include <string>

#include "pbt/error.hpp"
#include "pbt/plugin.hpp"
#include "pbt/strategy.hpp"

namespace {

class BatchRule : public pbt::Explore {
 public:
  BatchRule(std::unique_ptr<pbt::Explore> base, std::string batch, std::string minibatch, double ratio)
      : base_(std::move(base)), batch_(std::move(batch)), minibatch_(std::move(minibatch)), ratio_(ratio) {}

  pbt::Hyperparams explore(const pbt::Hyperparams& h, const pbt::SearchSpace& space, pbt::Rng& rng,
                           const pbt::ExploreContext& context) const override {
    pbt::Hyperparams out = base_->explore(h, space, rng, context);
    const pbt::Param& b = param(space, batch_);
    const pbt::Param& mb = param(space, minibatch_);
    if (pbt::as_double(out.at(batch_)) >= ratio_ * pbt::as_double(out.at(minibatch_))) return out;
    // First the minibatch comes down to what the batch allows; where its lower bound stops
    // it, the batch goes up to what the minibatch needs. clip() keeps both inside [space]
    // (and rounds an int: down for the minibatch, up for the batch, so the rule still holds).
    out[minibatch_] = mb.clip(fit(mb, pbt::as_double(out.at(batch_)) / ratio_, /*up=*/false));
    if (pbt::as_double(out.at(batch_)) < ratio_ * pbt::as_double(out.at(minibatch_)))
      out[batch_] = b.clip(fit(b, ratio_ * pbt::as_double(out.at(minibatch_)), /*up=*/true));
    if (pbt::as_double(out.at(batch_)) < ratio_ * pbt::as_double(out.at(minibatch_)))
      throw pbt::Error("batch_rule: no h in [space] has " + batch_ + " >= " + std::to_string(ratio_) + " x " +
                       minibatch_ + " near " + pbt::to_string(out) + " (check the bounds)");
    return out;
  }
  std::string name() const override { return "batch_rule"; }

 private:
  static const pbt::Param& param(const pbt::SearchSpace& space, const std::string& name) {
    const pbt::Param* p = space.find(name);
    if (!p || p->kind == pbt::Param::Kind::Categorical)
      throw pbt::Error("batch_rule: '" + name + "' is not a numeric hyperparameter of [space]");
    return *p;
  }
  // x as a value of p: an int rounded toward where the rule still holds.
  static pbt::Value fit(const pbt::Param& p, double x, bool up) {
    if (p.kind == pbt::Param::Kind::Int) return static_cast<std::int64_t>(up ? std::ceil(x) : std::floor(x));
    return x;
  }

  std::unique_ptr<pbt::Explore> base_;
  std::string batch_, minibatch_;
  double ratio_;
};

std::string text_option(nlohmann::json& options, const char* key, const std::string& fallback,
                        const std::string& where) {
  if (!options.contains(key)) return fallback;
  if (!options[key].is_string())
    throw pbt::ConfigError(where + "." + key, "expected a string, got " + options[key].dump());
  std::string v = options[key].get<std::string>();
  options.erase(key);
  return v;
}

void register_batch_rule() {
  pbt::register_explore("batch_rule", [](const nlohmann::json& given, const std::string& where) {
    nlohmann::json options = given;  // what is left after ours goes to the base strategy
    const std::string base = text_option(options, "base", "perturb", where);
    const std::string batch = text_option(options, "batch", "batch", where);
    const std::string minibatch = text_option(options, "minibatch", "minibatch", where);
    double ratio = 2.0;
    if (options.contains("ratio")) {
      if (!options["ratio"].is_number() || !(options["ratio"].get<double>() > 0))
        throw pbt::ConfigError(where + ".ratio", "expected a positive number, got " + options["ratio"].dump());
      ratio = options["ratio"].get<double>();
      options.erase("ratio");
    }
    if (base == "batch_rule") throw pbt::ConfigError(where + ".base", "batch_rule cannot wrap itself");
    if (batch == minibatch) throw pbt::ConfigError(where + ".minibatch", "names the same hyperparameter as batch");
    return std::make_unique<BatchRule>(pbt::make_explore(base, options, where), batch, minibatch, ratio);
  });
}

}  // namespace

PBT_PLUGIN(register_batch_rule)
