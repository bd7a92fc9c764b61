// Every config setting, its default and its check, in one place. README.md's
// "Config reference" follows this file.
#include "pbt/config.hpp"

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <toml++/toml.h>

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

const char* type_of(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date or time";
  }
}

// A TOML table read field by field; keys never read are refused by finish().
class Table {
 public:
  Table(const toml::table* t, std::string origin, std::string prefix)
      : t_(t), origin_(std::move(origin)), prefix_(std::move(prefix)) {}

  std::string where(const std::string& key) const {
    return origin_ + ": " + (prefix_.empty() ? key : prefix_ + "." + key);
  }
  std::string where() const { return origin_ + (prefix_.empty() ? "" : ": " + prefix_); }
  bool has(const std::string& key) const { return t_ && t_->contains(key); }

  const toml::node* get(const std::string& key) {
    used_.insert(key);
    return t_ ? t_->get(key) : nullptr;
  }
  std::int64_t integer(const std::string& key, std::optional<std::int64_t> def) {
    const toml::node* n = get(key);
    if (!n) return required(key, def);
    if (auto v = n->as_integer()) return v->get();
    throw ConfigError(where(key), std::string("expected an integer, got ") + type_of(*n));
  }
  double number(const std::string& key, std::optional<double> def) {
    const toml::node* n = get(key);
    if (!n) return required(key, def);
    if (auto v = n->as_floating_point()) return v->get();
    if (auto v = n->as_integer()) return static_cast<double>(v->get());
    throw ConfigError(where(key), std::string("expected a number, got ") + type_of(*n));
  }
  std::string string(const std::string& key, std::optional<std::string> def) {
    const toml::node* n = get(key);
    if (!n) return required(key, def);
    if (auto v = n->as_string()) return v->get();
    throw ConfigError(where(key), std::string("expected a string, got ") + type_of(*n));
  }
  bool boolean(const std::string& key, bool def) {
    const toml::node* n = get(key);
    if (!n) return def;
    if (auto v = n->as_boolean()) return v->get();
    throw ConfigError(where(key), std::string("expected true or false, got ") + type_of(*n));
  }
  Table table(const std::string& key) {
    const toml::node* n = get(key);
    if (n && !n->is_table()) throw ConfigError(where(key), std::string("expected a table, got ") + type_of(*n));
    return Table(n ? n->as_table() : nullptr, origin_, prefix_.empty() ? key : prefix_ + "." + key);
  }
  // Everything in the table except `skip`, as JSON (strategy and trainable options).
  nlohmann::json rest(const std::set<std::string>& skip) {
    nlohmann::json j = nlohmann::json::object();
    if (!t_) return j;
    for (const auto& [k, v] : *t_) {
      std::string key(k.str());
      used_.insert(key);
      if (!skip.count(key)) j[key] = to_json_node(v);
    }
    return j;
  }
  void finish() const {
    if (!t_) return;
    for (const auto& [k, v] : *t_)
      if (!used_.count(std::string(k.str()))) throw ConfigError(where(std::string(k.str())), "unknown key");
  }
  const toml::table* raw() const { return t_; }

 private:
  template <class T>
  T required(const std::string& key, const std::optional<T>& def) {
    if (def) return *def;
    throw ConfigError(where(key), "missing (required)");
  }
  const toml::table* t_;
  std::string origin_, prefix_;
  std::set<std::string> used_;
};

Param read_param(const std::string& name, Table t) {
  Param p;
  p.name = name;
  const std::string type = t.string("type", "float");
  if (type == "float") p.kind = Param::Kind::Float;
  else if (type == "int") p.kind = Param::Kind::Int;
  else if (type == "categorical") p.kind = Param::Kind::Categorical;
  else throw ConfigError(t.where("type"), "unknown type '" + type + "' (known: float, int, categorical)");

  if (p.kind == Param::Kind::Categorical) {
    const toml::node* n = t.get("choices");
    if (!n) throw ConfigError(t.where("choices"), "missing (required for a categorical)");
    const toml::array* a = n->as_array();
    if (!a) throw ConfigError(t.where("choices"), std::string("expected an array of strings, got ") + type_of(*n));
    for (const auto& c : *a) {
      if (!c.is_string()) throw ConfigError(t.where("choices"), "expected an array of strings");
      p.choices.push_back(c.as_string()->get());
    }
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

// A value from [[initial]] given as TOML, converted to the parameter's kind.
Value read_value(const Param& p, const toml::node& n, const std::string& where) {
  if (p.kind == Param::Kind::Categorical) {
    if (auto s = n.as_string()) return s->get();
  } else if (p.kind == Param::Kind::Int) {
    if (auto i = n.as_integer()) return i->get();
  } else {
    if (auto f = n.as_floating_point()) return f->get();
    if (auto i = n.as_integer()) return static_cast<double>(i->get());
  }
  throw ConfigError(where, std::string("expected a value of the parameter's type, got ") + type_of(n));
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
  Table top(&root, origin, "");

  c.name = top.string("name", std::nullopt);
  if (!std::regex_match(c.name, std::regex("[A-Za-z0-9_.-]{1,100}")))
    throw ConfigError(top.where("name"), "'" + c.name + "' must be 1-100 letters, digits, '_', '.' or '-'");
  const std::int64_t seed = top.integer("seed", 0);
  if (seed < 0) throw ConfigError(top.where("seed"), "must be >= 0");
  c.seed = static_cast<std::uint64_t>(seed);
  c.population = static_cast<int>(top.integer("population", std::nullopt));
  if (c.population < 1 || c.population > 100000)
    throw ConfigError(top.where("population"), "must be between 1 and 100000, got " + std::to_string(c.population));

  // [space.NAME]: the hyperparameters and their priors.
  {
    Table space = top.table("space");
    if (!space.raw() || space.raw()->empty()) throw ConfigError(top.where("space"), "missing: declare at least one hyperparameter");
    std::vector<Param> params;
    for (const auto& [k, v] : *space.raw()) {
      std::string name(k.str());
      params.push_back(read_param(name, space.table(name)));
    }
    c.space = SearchSpace(std::move(params));
  }

  // [trainable]
  {
    Table t = top.table("trainable");
    c.trainable = t.string("kind", std::nullopt);
    c.trainable_options = t.rest({"kind"});
    check_trainable_options(c.trainable, c.trainable_options, t.where());
  }

  // [budget]
  {
    Table t = top.table("budget");
    c.budget_steps = t.integer("steps", std::nullopt);
    if (c.budget_steps < 1) throw ConfigError(t.where("steps"), "must be >= 1");
    if (t.has("target_score")) c.target_score = t.number("target_score", std::nullopt);
    t.finish();
  }

  // [ready]
  {
    Table t = top.table("ready");
    c.ready.interval = t.integer("interval", std::nullopt);
    if (c.ready.interval < 1) throw ConfigError(t.where("interval"), "must be >= 1 step");
    c.ready.min_step = t.integer("min_step", 0);
    if (c.ready.min_step < 0) throw ConfigError(t.where("min_step"), "must be >= 0");
    c.eval_every = t.integer("eval_every", 0);
    if (c.eval_every < 0) throw ConfigError(t.where("eval_every"), "must be >= 0 (0: once per interval)");
    t.finish();
  }

  // [exploit]
  {
    Table t = top.table("exploit");
    c.exploit = t.string("strategy", "truncation");
    c.copy = t.string("copy", "all");
    if (c.copy != "all" && c.copy != "weights" && c.copy != "hyperparameters")
      throw ConfigError(t.where("copy"), "'" + c.copy + "' is not one of: all, weights, hyperparameters");
    c.window = static_cast<int>(t.integer("window", 10));
    if (c.window < 2) throw ConfigError(t.where("window"), "must be >= 2 (the t-test needs two scores)");
    c.exploit_options = t.rest({"strategy", "copy", "window"});
    auto e = make_exploit(c.exploit, c.exploit_options, t.where());
    if (c.population < e->min_population())
      throw ConfigError(top.where("population"), "exploit '" + c.exploit + "' needs at least " +
                                                     std::to_string(e->min_population()) + " members, got " +
                                                     std::to_string(c.population));
  }

  // [explore]
  {
    Table t = top.table("explore");
    c.explore = t.string("strategy", "perturb");
    c.explore_always = t.boolean("always", false);
    c.explore_options = t.rest({"strategy", "always"});
    make_explore(c.explore, c.explore_options, t.where());
  }

  // [[initial]]: explicit h for the first members.
  if (const toml::node* n = top.get("initial")) {
    const toml::array* a = n->as_array();
    if (!a) throw ConfigError(top.where("initial"), "expected an array of tables ([[initial]])");
    if (static_cast<int>(a->size()) > c.population)
      throw ConfigError(top.where("initial"), "gives " + std::to_string(a->size()) + " members but population is " +
                                                  std::to_string(c.population));
    for (std::size_t i = 0; i < a->size(); ++i) {
      const std::string at = top.where("initial[" + std::to_string(i) + "]");
      const toml::table* row = (*a)[i].as_table();
      if (!row) throw ConfigError(at, "expected a table");
      Hyperparams h;
      for (const auto& [k, v] : *row) {
        std::string key(k.str());
        const Param* p = c.space.find(key);
        if (!p) throw ConfigError(at + "." + key, "not a hyperparameter declared in [space]");
        h[key] = read_value(*p, v, at + "." + key);
        if (!p->contains(h[key]))
          throw ConfigError(at + "." + key, "value " + to_string(h[key]) + " is outside the bounds of '" + key + "'");
      }
      c.initial.push_back(h);
    }
  }

  // [workers]
  {
    Table t = top.table("workers");
    c.workers = static_cast<int>(t.integer("count", 1));
    if (c.workers < 1) throw ConfigError(t.where("count"), "must be >= 1");
    if (c.workers > c.population)
      throw ConfigError(t.where("count"), std::to_string(c.workers) + " workers for " + std::to_string(c.population) +
                                              " members: at most one worker per member");
    c.lease_seconds = t.number("lease_seconds", 30.0);
    if (!(c.lease_seconds >= 0.5)) throw ConfigError(t.where("lease_seconds"), "must be >= 0.5 seconds");
    t.finish();
  }

  // [store]
  {
    Table t = top.table("store");
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
