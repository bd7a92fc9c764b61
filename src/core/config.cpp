// Every config setting, its default and its check, in one place. README.md's
// "Config reference" follows this file.
#include "pbt/config.hpp"

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "core/options.hpp"
#include "pbt/error.hpp"
#include "pbt/trainable.hpp"

namespace pbt {

namespace {

nlohmann::json to_json_node(const toml::node& n) {
  if (auto t = n.as_table()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : *t) j[std::string(k.str())] = to_json_node(v);
    return j;
  }
  if (auto a = n.as_array()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& v : *a) j.push_back(to_json_node(v));
    return j;
  }
  if (auto v = n.as_integer()) return v->get();
  if (auto v = n.as_floating_point()) return v->get();
  if (auto v = n.as_boolean()) return v->get();
  if (auto v = n.as_string()) return v->get();
  return nullptr;  // dates and times: no option takes them; the option's check refuses null
}

Param read_param(const std::string& name, Options t) {
  Param p;
  p.name = name;
  const std::string type = t.string("type", "float");
  if (type == "float") p.kind = Param::Kind::Float;
  else if (type == "int") p.kind = Param::Kind::Int;
  else if (type == "categorical") p.kind = Param::Kind::Categorical;
  else throw ConfigError(t.path("type"), "unknown type '" + type + "' (known: float, int, categorical)");

  if (p.kind == Param::Kind::Categorical) {
    p.choices = t.strings("choices");
    p.ordered = t.boolean("ordered", false);
  } else {
    p.low = t.number("low", std::nullopt);
    p.high = t.number("high", std::nullopt);
    p.log = t.boolean("log", false);
  }
  t.finish();
  p.validate(t.where());
  return p;
}

// A value from [[initial]], converted to the parameter's kind.
Value read_value(const Param& p, const nlohmann::json& v, const std::string& where) {
  if (p.kind == Param::Kind::Categorical && v.is_string()) return v.get<std::string>();
  if (p.kind == Param::Kind::Int && v.is_number_integer()) return v.get<std::int64_t>();
  if (p.kind == Param::Kind::Float && v.is_number()) return v.get<double>();
  throw ConfigError(where, std::string("expected a value of the parameter's type, got ") + json_type_name(v));
}

}  // namespace

ExperimentConfig parse_config(const std::string& text, const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    throw ConfigError(origin + ":" + std::to_string(at.line) + ":" + std::to_string(at.column),
                      std::string(e.description()));
  }

  ExperimentConfig c;
  c.origin = origin;
  c.text = text;
  const nlohmann::json doc = to_json_node(root);
  Options top(doc, origin, /*top_level=*/true);

  c.name = top.string("name", std::nullopt);
  if (!std::regex_match(c.name, std::regex("[A-Za-z0-9_.-]{1,100}")))
    throw ConfigError(top.path("name"), "'" + c.name + "' must be 1-100 letters, digits, '_', '.' or '-'");
  const std::int64_t seed = top.integer("seed", 0);
  if (seed < 0) throw ConfigError(top.path("seed"), "must be >= 0");
  c.seed = static_cast<std::uint64_t>(seed);
  c.population = static_cast<int>(top.integer("population", std::nullopt));
  if (c.population < 1 || c.population > 100000)
    throw ConfigError(top.path("population"), "must be between 1 and 100000, got " + std::to_string(c.population));

  // [space.NAME]: the hyperparameters and their priors.
  {
    Options space = top.table("space");
    if (space.json().empty()) throw ConfigError(top.path("space"), "missing: declare at least one hyperparameter");
    std::vector<Param> params;
    for (const auto& [name, v] : space.json().items()) params.push_back(read_param(name, space.table(name)));
    c.space = SearchSpace(std::move(params));
  }

  // [trainable]
  {
    Options t = top.table("trainable");
    c.trainable = t.string("kind", std::nullopt);
    c.trainable_options = t.rest({"kind"});
    check_trainable_options(c.trainable, c.trainable_options, t.where());
  }

  // [budget]
  {
    Options t = top.table("budget");
    c.budget_steps = t.integer("steps", std::nullopt);
    if (c.budget_steps < 1) throw ConfigError(t.path("steps"), "must be >= 1");
    if (t.has("target_score")) c.target_score = t.number("target_score", std::nullopt);
    t.finish();
  }

  // [ready]
  {
    Options t = top.table("ready");
    c.ready.interval = t.integer("interval", std::nullopt);
    if (c.ready.interval < 1) throw ConfigError(t.path("interval"), "must be >= 1 step");
    c.ready.min_step = t.integer("min_step", 0);
    if (c.ready.min_step < 0) throw ConfigError(t.path("min_step"), "must be >= 0");
    c.eval_every = t.integer("eval_every", 0);
    if (c.eval_every < 0) throw ConfigError(t.path("eval_every"), "must be >= 0 (0: once per interval)");
    t.finish();
  }

  // [exploit]
  {
    Options t = top.table("exploit");
    c.exploit = t.string("strategy", "truncation");
    c.copy = t.string("copy", "all");
    if (c.copy != "all" && c.copy != "weights" && c.copy != "hyperparameters")
      throw ConfigError(t.path("copy"), "'" + c.copy + "' is not one of: all, weights, hyperparameters");
    c.window = static_cast<int>(t.integer("window", 10));
    if (c.window < 2) throw ConfigError(t.path("window"), "must be >= 2 (the t-test needs two scores)");
    c.exploit_options = t.rest({"strategy", "copy", "window"});
    auto e = make_exploit(c.exploit, c.exploit_options, t.where());
    if (c.population < e->min_population())
      throw ConfigError(top.path("population"), "exploit '" + c.exploit + "' needs at least " +
                                                     std::to_string(e->min_population()) + " members, got " +
                                                     std::to_string(c.population));
  }

  // [explore]
  {
    Options t = top.table("explore");
    c.explore = t.string("strategy", "perturb");
    c.explore_always = t.boolean("always", false);
    c.explore_options = t.rest({"strategy", "always"});
    make_explore(c.explore, c.explore_options, t.where());
  }

  // [[initial]]: explicit h for the first members.
  if (const nlohmann::json* a = top.raw("initial")) {
    if (!a->is_array()) throw ConfigError(top.path("initial"), "expected an array of tables ([[initial]])");
    if (static_cast<int>(a->size()) > c.population)
      throw ConfigError(top.path("initial"), "gives " + std::to_string(a->size()) + " members but population is " +
                                                  std::to_string(c.population));
    for (std::size_t i = 0; i < a->size(); ++i) {
      const std::string at = top.path("initial[" + std::to_string(i) + "]");
      const nlohmann::json& row = (*a)[i];
      if (!row.is_object()) throw ConfigError(at, "expected a table");
      Hyperparams h;
      for (const auto& [key, v] : row.items()) {
        const Param* p = c.space.find(key);
        if (!p) throw ConfigError(at + "." + key, "not a hyperparameter declared in [space]");
        h[key] = read_value(*p, v, at + "." + key);
        if (!p->contains(h[key]))
          throw ConfigError(at + "." + key, "value " + to_string(h[key]) + " is outside the bounds of '" + key + "'");
      }
      c.initial.push_back(h);
    }
  }

  // The space's corners (every lower bound, every upper bound) through the trainable's own
  // check of h, so bounds it cannot take are refused now, naming the hyperparameter.
  {
    Hyperparams lows, highs;
    for (const auto& p : c.space.params()) {
      if (p.kind == Param::Kind::Categorical) {
        lows[p.name] = p.choices.front();
        highs[p.name] = p.choices.back();
      } else if (p.kind == Param::Kind::Int) {
        lows[p.name] = static_cast<std::int64_t>(p.low);
        highs[p.name] = static_cast<std::int64_t>(p.high);
      } else {
        lows[p.name] = p.low;
        highs[p.name] = p.high;
      }
    }
    check_trainable_hyperparams(c.trainable, lows, top.path("space") + " (every lower bound)");
    check_trainable_hyperparams(c.trainable, highs, top.path("space") + " (every upper bound)");
  }

  // [workers]
  {
    Options t = top.table("workers");
    c.workers = static_cast<int>(t.integer("count", 1));
    if (c.workers < 1) throw ConfigError(t.path("count"), "must be >= 1");
    if (c.workers > c.population)
      throw ConfigError(t.path("count"), std::to_string(c.workers) + " workers for " + std::to_string(c.population) +
                                              " members: at most one worker per member");
    c.lease_seconds = t.number("lease_seconds", 30.0);
    if (!(c.lease_seconds >= 0.5)) throw ConfigError(t.path("lease_seconds"), "must be >= 0.5 seconds");
    c.max_failures = static_cast<int>(t.integer("max_failures", 3));
    if (c.max_failures < 1) throw ConfigError(t.path("max_failures"), "must be >= 1");
    t.finish();
  }

  // [store]
  {
    Options t = top.table("store");
    c.store = t.string("uri", "");
    t.finish();
  }

  top.finish();
  return c;
}

ExperimentConfig load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, "cannot read the config file");
  std::stringstream s;
  s << in.rdbuf();
  return parse_config(s.str(), path);
}

std::vector<Hyperparams> initial_hyperparams(const ExperimentConfig& c) {
  std::vector<Hyperparams> out;
  for (int m = 0; m < c.population; ++m) {
    Rng rng = make_rng(c.seed, m, 0, kInit);
    Hyperparams h = c.space.sample(rng);
    if (m < static_cast<int>(c.initial.size()))
      for (const auto& [k, v] : c.initial[m]) h[k] = v;  // given values; the rest stay sampled
    out.push_back(h);
  }
  return out;
}

}  // namespace pbt
