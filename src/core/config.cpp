// Every config setting, its default and its check, in one place. README.md's
// "Config reference" follows this file.
#include "pbt/config.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
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

constexpr double kMaxIntBound = 9007199254740992.0;  // 2^53

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
    // An int's bounds become int64 values and their difference a count: keep them where a
    // double holds every whole number, so neither the conversion nor high - low + 1 overflows.
    if (type == "int")
      for (const char* key : {"low", "high"}) {
        const double x = key[0] == 'l' ? p.low : p.high;
        if (std::fabs(x) > kMaxIntBound)
          throw ConfigError(t.path(key), "an int's bounds must be within +-2^53 (9007199254740992), got " +
                                             to_string(Value(x)));
      }
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

// Every config reads through recursion, toml++'s and ours, one call per level of nesting, so a
// file nested ~50,000 levels deep (a 100 KB dotted key) would overflow the stack. This cheap
// scan bounds the nesting before anything parses: the dots of the current [table] header,
// plus the dots of the key being read (a dot in a value, as in 1.5, counts too: harmless),
// plus the open arrays and inline tables. Strings and comments are skipped.
void check_nesting(const std::string& text, const std::string& origin) {
  int line = 1;
  int header = 0;                 // levels of the current [table] or [[array of tables]]
  int dots = 0;                   // dots since the statement (or array element) began
  std::vector<int> open;          // `dots` when each open [ or { began
  bool line_start = true;         // only blanks so far on this line, outside any bracket
  const std::size_t n = text.size();
  auto too_deep = [&](int depth) {
    if (depth > kMaxConfigDepth)
      throw ConfigError(origin + ":" + std::to_string(line),
                        "nested more than " + std::to_string(kMaxConfigDepth) +
                            " levels deep (tables, dotted keys, arrays and inline tables together)");
  };
  // Skips the string that starts at i; returns the index of its last character.
  auto skip_string = [&](std::size_t i) {
    const char q = text[i];
    const bool multi = i + 2 < n && text[i + 1] == q && text[i + 2] == q;
    std::size_t j = i + (multi ? 3 : 1);
    for (; j < n; ++j) {
      if (text[j] == '\n') {
        if (!multi) return j - 1;  // unterminated: the parser will say so
        ++line;
      }
      if (q == '"' && text[j] == '\\') {
        if (j + 1 < n && text[j + 1] == '\n') {
          if (!multi) return j;
          ++line;
        }
        ++j;
        continue;
      }
      if (text[j] == q && (!multi || (j + 2 < n && text[j + 1] == q && text[j + 2] == q))) {
        if (!multi) return j;
        j += 2;
        while (j + 1 < n && text[j + 1] == q) ++j;  // up to two quotes may end the content
        return j;
      }
    }
    return n - 1;
  };
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      if (open.empty()) {
        dots = 0;
        line_start = true;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') continue;
    if (c == '#') {
      while (i + 1 < n && text[i + 1] != '\n') ++i;
      continue;
    }
    if (c == '"' || c == '\'') {
      i = skip_string(i);
      line_start = false;
      continue;
    }
    if (line_start && c == '[') {  // a table header: its dots set the level of what follows
      line_start = false;
      header = (i + 1 < n && text[i + 1] == '[') ? 2 : 1;
      for (++i; i < n && text[i] != ']' && text[i] != '\n'; ++i) {
        if (text[i] == '"' || text[i] == '\'') i = skip_string(i);
        else if (text[i] == '.') too_deep(++header);
      }
      if (i < n && text[i] == '\n') --i;  // unterminated: the newline ends the line as usual
      continue;
    }
    line_start = false;
    if (c == '.') {
      too_deep(header + ++dots + static_cast<int>(open.size()));
    } else if (c == '[' || c == '{') {
      open.push_back(dots);
      too_deep(header + dots + static_cast<int>(open.size()));
    } else if (c == ']' || c == '}') {
      if (!open.empty()) {
        dots = open.back();
        open.pop_back();
      }
    } else if (c == ',') {
      if (!open.empty()) dots = open.back();  // the next element or key starts afresh
    }
  }
}

}  // namespace

ExperimentConfig parse_config(const std::string& text, const std::string& origin) {
  if (text.size() > kMaxConfigBytes)
    throw ConfigError(origin, "the config is " + std::to_string(text.size()) + " bytes; at most " +
                                  std::to_string(kMaxConfigBytes) + " (1 MiB) are read");
  check_nesting(text, origin);
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
  // The name is the run directory's default (runs/NAME): "." and ".." would be runs/ itself
  // and the directory holding it.
  if (c.name == "." || c.name == "..")
    throw ConfigError(top.path("name"), "'" + c.name + "' is not a usable directory name");
  const std::int64_t seed = top.integer("seed", 0);
  if (seed < 0) throw ConfigError(top.path("seed"), "must be >= 0");
  c.seed = static_cast<std::uint64_t>(seed);
  c.population = static_cast<int>(top.integer_in("population", std::nullopt, 1, 100000));

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
    c.budget_steps = t.integer_in("steps", std::nullopt, 1, kMaxSteps);
    if (t.has("target_score")) c.target_score = t.number("target_score", std::nullopt);
    t.finish();
  }

  // [ready]
  {
    Options t = top.table("ready");
    c.ready.interval = t.integer_in("interval", std::nullopt, 1, kMaxSteps);
    c.ready.min_step = t.integer_in("min_step", 0, 0, kMaxSteps);
    c.eval_every = t.integer_in("eval_every", 0, 0, kMaxSteps);  // 0: once per interval
    t.finish();
  }

  // [exploit]
  {
    Options t = top.table("exploit");
    c.exploit = t.string("strategy", "truncation");
    const std::string copy = t.string("copy", "all");
    c.copy = CopyMode::none;  // not a setting: a copy takes something
    try {
      c.copy = parse_copy_mode(copy);
    } catch (const Error&) {
    }
    if (c.copy == CopyMode::none)
      throw ConfigError(t.path("copy"), "'" + copy + "' is not one of: all, weights, hyperparameters");
    // At least two: the t-test needs two scores.
    c.window = static_cast<int>(t.integer_in("window", 10, 2, 100000));
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
    c.workers = static_cast<int>(t.integer_in("count", 1, 1, 100000));
    if (c.workers > c.population)
      throw ConfigError(t.path("count"), std::to_string(c.workers) + " workers for " + std::to_string(c.population) +
                                              " members: at most one worker per member");
    // Seconds; at most a day: a worker heartbeats a fraction of it, and a member held by a
    // dead worker waits the whole lease.
    c.lease_seconds = t.number_in("lease_seconds", 30.0, 0.5, kMaxLeaseSeconds);
    c.max_failures = static_cast<int>(t.integer_in("max_failures", 3, 1, 1000000));
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
