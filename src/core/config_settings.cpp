// Every setting of the config, declared once: its key, its value and check, its default
// (the initialiser in pbt/config.hpp or pbt/space.hpp, read from there) and what it is.
#include "core/config_settings.hpp"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <regex>
#include <stdexcept>
#include <type_traits>

#include "pbt/plugin.hpp"

namespace pbt {

namespace {

using C = ExperimentConfig;

enum class Need { kRequired, kDefault };

// A check beyond the type and range, given the value read and the target so far.
template <class V, class Target>
using Check = std::function<void(const Options& table, const V& value, const Target& target)>;

template <class T>
const T& defaults() {
  static const T d{};
  return d;
}

// The type of the field `get` reaches: a member pointer, or a lambda for a nested field.
template <class Target, class Get>
using FieldType = std::decay_t<std::invoke_result_t<Get, Target&>>;

template <class Target, class Get>
auto default_of(Get get) {
  return std::invoke(get, defaults<Target>());
}

// 10^12 reads better than its digits.
std::string int_text(std::int64_t x) {
  std::int64_t y = x;
  int k = 0;
  while (y >= 10 && y % 10 == 0) y /= 10, ++k;
  return x >= 1000000 && y == 1 ? "10^" + std::to_string(k) : std::to_string(x);
}

std::string toml_string(const std::string& s) { return nlohmann::json(s).dump(); }

template <class Target>
Setting<Target> declare(std::string key, std::string value, std::string default_text, std::string what,
                        std::function<void(Options&, Target&)> read) {
  return Setting<Target>{std::move(key),  std::move(value), std::move(default_text),
                         std::move(what), std::move(read),  {}};
}

template <class Target, class Get>
Setting<Target> integer_in(const std::string& key, Get get, Need need, std::int64_t lo, std::int64_t hi,
                           std::string what, Check<std::int64_t, Target> check = {}) {
  std::optional<std::int64_t> def;
  if (need == Need::kDefault) def = static_cast<std::int64_t>(default_of<Target>(get));
  return declare<Target>(key, "integer, " + int_text(lo) + " to " + int_text(hi),
                         def ? std::to_string(*def) : "required", std::move(what), [=](Options& t, Target& target) {
                           const std::int64_t x = t.integer_in(key, def, lo, hi);
                           if (check) check(t, x, target);
                           std::invoke(get, target) = static_cast<FieldType<Target, Get>>(x);
                         });
}

template <class Target, class Get>
Setting<Target> number_in(const std::string& key, Get get, double lo, double hi, std::string what) {
  const double def = default_of<Target>(get);
  return declare<Target>(key, "number, " + Options::number_text(lo) + " to " + Options::number_text(hi),
                         Options::number_text(def), std::move(what),
                         [=](Options& t, Target& target) { std::invoke(get, target) = t.number_in(key, def, lo, hi); });
}

// A required number, with a check of its own.
template <class Target, class Get>
Setting<Target> number(const std::string& key, Get get, std::string value, std::string what,
                       Check<double, Target> check = {}) {
  return declare<Target>(key, std::move(value), "required", std::move(what), [=](Options& t, Target& target) {
    const double x = t.number(key, std::nullopt);
    if (check) check(t, x, target);
    std::invoke(get, target) = x;
  });
}

// A number that may be absent, with no default (an std::optional field).
template <class Target, class Get>
Setting<Target> optional_number(const std::string& key, Get get, std::string what) {
  return declare<Target>(key, "number", "none", std::move(what), [=](Options& t, Target& target) {
    if (t.has(key)) std::invoke(get, target) = t.number(key, std::nullopt);
  });
}

template <class Target, class Get>
Setting<Target> text(const std::string& key, Get get, Need need, std::string value, std::string what,
                     Check<std::string, Target> check = {}) {
  std::optional<std::string> def;
  if (need == Need::kDefault) def = default_of<Target>(get);
  return declare<Target>(key, std::move(value), def ? toml_string(*def) : "required", std::move(what),
                         [=](Options& t, Target& target) {
                           std::string x = t.string(key, def);
                           if (check) check(t, x, target);
                           std::invoke(get, target) = std::move(x);
                         });
}

template <class Target, class Get>
Setting<Target> boolean(const std::string& key, Get get, std::string what) {
  const bool def = default_of<Target>(get);
  return declare<Target>(key, "true or false", def ? "true" : "false", std::move(what),
                         [=](Options& t, Target& target) { std::invoke(get, target) = t.boolean(key, def); });
}

template <class Target>
Setting<Target> when(Setting<Target> s, bool (*applies)(const Target&)) {
  s.applies = applies;
  return s;
}

// `[table] plugin`: a shared library loaded as the table is read, before its kind or strategy
// is looked up (readers of a run defer it: see plugins_deferred). The same search and errors
// for every table.
Setting<C> plugin(const std::string& table, std::string C::*field) {
  const std::string what = table == "trainable" ? "a trainable plugin" : "a plugin of " + table + " strategies";
  return declare<C>("plugin", "string: a shared library's path", "none",
                    what +
                        " to load first: relative to the config's directory, or a bare name found there, "
                        "on $PBT_PLUGIN_PATH or in pbt's plugin directory",
                    [field](Options& t, C& c) {
                      c.*field = t.string("plugin", std::string());
                      if ((c.*field).empty() || plugins_deferred()) return;
                      const std::string dir = std::filesystem::path(c.origin).parent_path().string();
                      load_plugin(c.*field, dir, t.path("plugin"));
                    });
}

// ---- the checks that are more than a type and a range ----

void check_name(const Options& t, const std::string& name, const C&) {
  if (!std::regex_match(name, std::regex("[A-Za-z0-9_.-]{1,100}")))
    throw ConfigError(t.path("name"), "'" + name + "' must be 1-100 letters, digits, '_', '.' or '-'");
  // The name is the run directory's default (runs/NAME): "." and ".." would be runs/ itself
  // and the directory holding it.
  if (name == "." || name == "..") throw ConfigError(t.path("name"), "'" + name + "' is not a usable directory name");
}

void check_workers(const Options& t, const std::int64_t& workers, const C& c) {
  const std::string why = workers_problem(workers, c.population);
  if (!why.empty()) throw ConfigError(t.path("count"), why);
}

void read_gpus(Options& t, C& c) {
  const nlohmann::json* v = t.raw("gpus");
  if (!v) return;
  if (!v->is_array())
    throw ConfigError(t.path("gpus"), std::string("expected an array of integers, got ") + json_type_name(*v));
  std::vector<std::int64_t> ids;
  for (const auto& x : *v) {
    if (!x.is_number_integer())
      throw ConfigError(t.path("gpus"), "expected an array of integers, got " + x.dump() + " in " + v->dump());
    ids.push_back(x.get<std::int64_t>());
  }
  const std::string why = gpu_ids_problem(ids);
  if (!why.empty()) throw ConfigError(t.path("gpus"), why + " in " + v->dump());
  c.gpus.assign(ids.begin(), ids.end());
}

void check_gpu_places(const Options& t, const std::int64_t& per_gpu, const C& c) {
  if (c.gpus.empty()) return;
  const std::string why = gpus_problem(c.workers, c.gpus.size(), per_gpu);
  if (!why.empty()) throw ConfigError(t.path("gpus"), why);
}

// An int's bounds become int64 values and their difference a count: keep them where a
// double holds every whole number, so neither the conversion nor high - low + 1 overflows.
// Checked once both are read (low first), as `high` is.
void check_int_bounds(const Options& t, const double& high, const Param& p) {
  constexpr double kMaxIntBound = 9007199254740992.0;  // 2^53
  if (p.kind != Param::Kind::Int) return;
  for (const char* key : {"low", "high"}) {
    const double x = key[0] == 'l' ? p.low : high;
    if (std::fabs(x) > kMaxIntBound)
      throw ConfigError(t.path(key),
                        "an int's bounds must be within +-2^53 (9007199254740992), got " + to_string(Value(x)));
  }
}

const char* const kKindNames[] = {"float", "int", "categorical"};  // by Param::Kind

bool numeric(const Param& p) { return p.kind != Param::Kind::Categorical; }
bool categorical(const Param& p) { return p.kind == Param::Kind::Categorical; }

}  // namespace

const std::vector<TableSettings<ExperimentConfig>>& config_tables() {
  constexpr auto kReq = Need::kRequired;
  constexpr auto kDef = Need::kDefault;
  static const std::vector<TableSettings<C>> tables = {
      {"",
       {
           text<C>("name", &C::name, kReq, "string: 1-100 letters, digits, `_`, `.`, `-`; not `.` or `..`",
                   "experiment name; the run directory's default is `runs/NAME`", check_name),
           declare<C>("seed", "integer, >= 0", std::to_string(defaults<C>().seed),
                      "seeds every random choice: (seed, member, step) -> stream",
                      [](Options& t, C& c) {
                        const std::int64_t seed = t.integer("seed", static_cast<std::int64_t>(defaults<C>().seed));
                        if (seed < 0) throw ConfigError(t.path("seed"), "must be >= 0");
                        c.seed = static_cast<std::uint64_t>(seed);
                      }),
           integer_in<C>("population", &C::population, kReq, 1, 100000,
                         "members; at least what the exploit strategy needs"),
       },
       ""},
      {"trainable",
       {text<C>("kind", &C::trainable, kReq, "string",
                "which trainable: toy, nqm, process; rl, gan, translation (LibTorch); or one a plugin registers"),
        plugin("trainable", &C::trainable_plugin)},
       "the trainable's own options, checked by it"},
      {"budget",
       {
           integer_in<C>("steps", &C::budget_steps, kReq, 1, kMaxSteps, "steps per member"),
           optional_number<C>("target_score", &C::target_score, "stop the whole run when a member reaches it"),
       },
       ""},
      {"ready",
       {
           integer_in<C>(
               "interval", [](auto& c) -> auto& { return c.ready.interval; }, kReq, 1, kMaxSteps,
               "ready when at least this many steps since the member was last ready"),
           integer_in<C>(
               "min_step", [](auto& c) -> auto& { return c.ready.min_step; }, kDef, 0, kMaxSteps,
               "and not before this step"),
           integer_in<C>("eval_every", &C::eval_every, kDef, 0, kMaxSteps,
                         "eval every N steps inside an interval (0: once, at its end)"),
           declare<C>("mode", "string: async or sync", toml_string("async"),
                      "async: a ready member decides against the population as it is; sync: it waits until "
                      "every live member has reached its step, and all decide against one snapshot",
                      [](Options& t, C& c) {
                        const std::string mode = t.string("mode", "async");
                        if (mode != "async" && mode != "sync")
                          throw ConfigError(t.path("mode"), "'" + mode + "' is not one of: async, sync");
                        c.ready.sync = mode == "sync";
                      }),
       },
       ""},
      {"exploit",
       {
           plugin("exploit", &C::exploit_plugin),
           text<C>("strategy", &C::exploit, kDef, "string",
                   "truncation, tournament, ttest, fire or none; or one a plugin registers"),
           declare<C>("copy", "string: all, weights or hyperparameters", toml_string(to_string(defaults<C>().copy)),
                      "what a copy takes from its donor",
                      [](Options& t, C& c) {
                        const std::string copy = t.string("copy", to_string(defaults<C>().copy));
                        c.copy = CopyMode::none;  // not a setting: a copy takes something
                        try {
                          c.copy = parse_copy_mode(copy);
                        } catch (const Error&) {
                        }
                        if (c.copy == CopyMode::none)
                          throw ConfigError(t.path("copy"),
                                            "'" + copy + "' is not one of: all, weights, hyperparameters");
                      }),
           // At least two: the t-test needs two scores.
           integer_in<C>("window", &C::window, kDef, 2, 100000, "scores kept per member for the t-test"),
       },
       "the strategy's options (truncation: `fraction`, `copy_ties`; ttest: `alpha`; fire: `subpopulations` = 2, "
       "`fraction` = 0.2, `min_intervals` = 2, `curve_intervals` = 8, `evaluators` = 0, `evaluate_intervals` = 4: see "
       "docs/fire.md)"},
      {"explore",
       {
           plugin("explore", &C::explore_plugin),
           text<C>("strategy", &C::explore, kDef, "string",
                   "perturb, resample, gaussian, pb2 or none; or one a plugin registers"),
           boolean<C>("always", &C::explore_always,
                      "explore at every ready step even without a copy (\"explore only\")"),
       },
       "the strategy's options (perturb: `factors`, `resample_probability`; resample: `probability`; gaussian: "
       "`sigma`; pb2: `beta` = 1.0, `eps` (fitted), `candidates` = 256, `refine` = 20, `max_points` = 128: see "
       "docs/pb2.md)"},
      {"space.NAME", {}, ""},  // its place in the reference: param_table() has its settings
      {"initial",
       {},
       "`[[initial]]` tables, one per member from the first: a hyperparameter's value, within its bounds (the "
       "rest are sampled)"},
      {"workers",
       {
           integer_in<C>("count", &C::workers, kDef, 1, 100000,
                         "local worker processes for `pbt run` (at most one per member)", check_workers),
           // At most a day: a worker heartbeats a fraction of it, and a member held by a dead
           // worker waits the whole lease.
           number_in<C>("lease_seconds", &C::lease_seconds, 0.5, kMaxLeaseSeconds,
                        "a silent worker's member is free for another after this many seconds"),
           integer_in<C>("max_failures", &C::max_failures, kDef, 1, 1000000,
                         "failed intervals in a row before a member is marked failed"),
           declare<C>("gpus", "array of integers, 0 to 10^6, no duplicates", "none",
                      "devices for `pbt run`'s workers: worker slot i sees only gpus[i % len] through "
                      "`CUDA_VISIBLE_DEVICES` (`pbt run --gpus` overrides); none: left as it is",
                      read_gpus),
           integer_in<C>("workers_per_gpu", &C::workers_per_gpu, kDef, 1, 100000,
                         "workers that may share one of `gpus` (count <= len(gpus) x this)", check_gpu_places),
       },
       ""},
      {"store",
       {text<C>("uri", &C::store, kDef, "string",
                "the store: `sqlite:PATH` or `postgresql://...`; empty: `RUN_DIR/store.db`")},
       ""},
  };
  return tables;
}

const TableSettings<ExperimentConfig>& config_table(const std::string& name) {
  for (const auto& t : config_tables())
    if (t.name == name) return t;
  throw std::logic_error("no config table '" + name + "'");
}

const TableSettings<Param>& param_table() {
  static const TableSettings<Param> table = {
      "space.NAME",
      {
          declare<Param>("type", "string: float, int or categorical",
                         toml_string(kKindNames[int(defaults<Param>().kind)]), "the kind of value",
                         [](Options& t, Param& p) {
                           const std::string type = t.string("type", kKindNames[int(defaults<Param>().kind)]);
                           if (type == "float") p.kind = Param::Kind::Float;
                           else if (type == "int") p.kind = Param::Kind::Int;
                           else if (type == "categorical") p.kind = Param::Kind::Categorical;
                           else
                             throw ConfigError(t.path("type"),
                                               "unknown type '" + type + "' (known: float, int, categorical)");
                         }),
          when(declare<Param>("choices", "array of strings", "required", "categorical: the values",
                              [](Options& t, Param& p) { p.choices = t.strings("choices"); }),
               categorical),
          when(boolean<Param>("ordered", &Param::ordered,
                              "categorical: perturb moves to a neighbour (unordered: resampled)"),
               categorical),
          when(number<Param>("low", &Param::low, "number (an int's within ±2^53)",
                             "float, int: the lower bound (inclusive)"),
               numeric),
          when(number<Param>("high", &Param::high, "number (an int's within ±2^53)",
                             "float, int: the upper bound (inclusive)", check_int_bounds),
               numeric),
          when(boolean<Param>("log", &Param::log,
                              "float, int: log-uniform prior, perturbation in log space (needs low > 0)"),
               numeric),
      },
      ""};
  return table;
}

std::string workers_problem(std::int64_t workers, int population) {
  if (workers <= population) return "";
  return std::to_string(workers) + " workers for " + std::to_string(population) +
         " members: at most one worker per member";
}

std::string gpu_ids_problem(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return "names no device (leave it out to leave CUDA_VISIBLE_DEVICES alone)";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] > 1000000)
      return "a GPU id must be an integer from 0 to 10^6, got " + std::to_string(ids[i]);
    for (std::size_t j = 0; j < i; ++j)
      if (ids[j] == ids[i]) return "GPU " + std::to_string(ids[i]) + " is listed twice";
  }
  return "";
}

std::string gpus_problem(std::int64_t workers, std::size_t gpus, std::int64_t per_gpu) {
  if (workers <= static_cast<std::int64_t>(gpus) * per_gpu) return "";
  return std::to_string(workers) + " workers do not fit " + std::to_string(gpus) + " GPU" + (gpus == 1 ? "" : "s") +
         " x " + std::to_string(per_gpu) +
         " workers_per_gpu = " + std::to_string(static_cast<std::int64_t>(gpus) * per_gpu) +
         ": name more GPUs, raise workers_per_gpu or start fewer workers";
}

int gpu_of_slot(const std::vector<int>& gpus, int slot) {
  return gpus.at(static_cast<std::size_t>(slot) % gpus.size());
}

}  // namespace pbt
