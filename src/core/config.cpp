// The config's readers, one per table, each reading the settings declared in
// config_settings.cpp; parse_config calls them in an order where every check finds what
// it needs already read (the population before the exploit's minimum, [space] before
// [[initial]]).
#include "pbt/config.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include "pbt/error.hpp"
#include "pbt/options.hpp"
#include "pbt/plugin.hpp"
#include "pbt/trainable.hpp"
#include "core/config_settings.hpp"
#include "core/config_text.hpp"

namespace pbt {

namespace {

// A table whose undeclared keys are options handed on (to the trainable or a strategy):
// reads its settings and returns the rest.
nlohmann::json read_with_options(Options& t, const std::string& name, ExperimentConfig& c) {
  const auto& decl = config_table(name);
  read_settings(t, decl, c);
  std::set<std::string> declared;
  for (const auto& s : decl.settings) declared.insert(s.key);
  return t.rest(declared);
}

// A table that holds only its declared settings.
void read_plain(Options& top, const std::string& name, ExperimentConfig& c) {
  Options t = top.table(name);
  read_settings(t, config_table(name), c);
  t.finish();
}

// [space.NAME]: the hyperparameters and their priors.
void read_space(Options& top, ExperimentConfig& c) {
  Options space = top.table("space");
  if (space.json().empty()) throw ConfigError(top.path("space"), "missing: declare at least one hyperparameter");
  std::vector<Param> params;
  for (const auto& [name, v] : space.json().items()) {
    Options t = space.table(name);
    Param p;
    p.name = name;
    read_settings(t, param_table(), p);
    t.finish();
    p.validate(t.where());
    params.push_back(std::move(p));
  }
  c.space = SearchSpace(std::move(params));
}

void read_trainable(Options& top, ExperimentConfig& c) {
  Options t = top.table("trainable");
  c.trainable_options = read_with_options(t, "trainable", c);
  check_trainable_options(c.trainable, c.trainable_options, t.where());
}

void read_exploit(Options& top, ExperimentConfig& c) {
  Options t = top.table("exploit");
  c.exploit_options = read_with_options(t, "exploit", c);
  // A reader of a run loads no plugin: a strategy that comes from one is taken unchecked (it
  // was checked when the run was created), as a trainable kind is.
  if (!c.exploit_plugin.empty() && plugins_deferred()) return;
  auto e = make_exploit(c.exploit, c.exploit_options, t.where());
  e->check(c.population, t.where());
  if (c.population < e->min_population())
    throw ConfigError(top.path("population"), "exploit '" + c.exploit + "' needs at least " +
                                                  std::to_string(e->min_population()) + " members, got " +
                                                  std::to_string(c.population));
}

void read_explore(Options& top, ExperimentConfig& c) {
  Options t = top.table("explore");
  c.explore_options = read_with_options(t, "explore", c);
  if (!c.explore_plugin.empty() && plugins_deferred()) return;  // as for [exploit]
  make_explore(c.explore, c.explore_options, t.where())->check(c.space, t.path("strategy"));
}

// A value from [[initial]], converted to the parameter's kind.
Value read_value(const Param& p, const nlohmann::json& v, const std::string& where) {
  if (p.kind == Param::Kind::Categorical && v.is_string()) return v.get<std::string>();
  if (p.kind == Param::Kind::Int && v.is_number_integer()) return v.get<std::int64_t>();
  if (p.kind == Param::Kind::Float && v.is_number()) return v.get<double>();
  throw ConfigError(where, std::string("expected a value of the parameter's type, got ") + json_type_name(v));
}

// [[initial]]: explicit h for the first members.
void read_initial(Options& top, ExperimentConfig& c) {
  const nlohmann::json* a = top.raw("initial");
  if (!a) return;
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
void check_space_corners(const Options& top, const ExperimentConfig& c) {
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

}  // namespace

ExperimentConfig parse_config(const std::string& text, const std::string& origin) {
  const nlohmann::json doc = read_toml(text, origin);
  ExperimentConfig c;
  c.origin = origin;
  c.text = text;
  Options top(doc, origin, /*top_level=*/true);
  read_settings(top, config_table(""), c);
  read_space(top, c);
  read_trainable(top, c);
  read_plain(top, "budget", c);
  read_plain(top, "ready", c);
  read_exploit(top, c);
  read_explore(top, c);
  read_initial(top, c);
  check_space_corners(top, c);
  read_plain(top, "workers", c);
  read_plain(top, "store", c);
  top.finish();
  return c;
}

ExperimentConfig load_config(const std::string& path) {
  // A regular file, read up to the size cap: /dev/zero or a FIFO would never end.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) throw ConfigError(path, "cannot read the config file");
    throw ConfigError(path, std::string("cannot read the config file: ") + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) throw ConfigError(path, "not a regular file; give a TOML config file");
  if (static_cast<std::uintmax_t>(st.st_size) > kMaxConfigBytes)
    throw ConfigError(path, "the config is " + std::to_string(st.st_size) + " bytes; at most " +
                                std::to_string(kMaxConfigBytes) + " (1 MiB) are read");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, "cannot read the config file");
  std::string text(kMaxConfigBytes + 1, '\0');  // one more than allowed: parse_config sees a file that grew
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) throw ConfigError(path, "cannot read the config file");
  return parse_config(text, path);
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
