// The study file: its reader, the configs of its runs (the base with each variant's keys),
// and the paired tests that compare a variant with the baseline.
#include "pbt/study.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <toml++/toml.h>
#include <boost/math/distributions/binomial.hpp>
#include <boost/math/distributions/normal.hpp>

#include "pbt/error.hpp"
#include "pbt/options.hpp"
#include "core/config_settings.hpp"
#include "core/config_text.hpp"

namespace fs = std::filesystem;

namespace pbt {

namespace {

std::string toml_text(const toml::table& t) {
  std::ostringstream s;
  s << toml::toml_formatter(t);
  return s.str() + "\n";
}

// For the outputs only (a run's config text keeps the formatter's digits, which its hash
// depends on): a float printed with 17 digits ("0.20000000000000001") in its shortest form
// that reads back as the same double ("0.2").
std::string shortest_floats(const std::string& text) {
  static const std::regex long_float(R"(-?\d+\.\d{12,}(?:[eE][+-]?\d+)?)");
  std::string out;
  std::size_t at = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), long_float); it != std::sregex_iterator(); ++it) {
    const std::string digits = it->str();
    const double x = std::strtod(digits.c_str(), nullptr);
    std::string shortest = digits;
    for (int precision = 1; precision <= 17; ++precision) {
      std::ostringstream s;
      s.precision(precision);
      s << x;
      if (std::strtod(s.str().c_str(), nullptr) == x) {
        shortest = s.str();
        break;
      }
    }
    if (shortest.find_first_of(".eE") == std::string::npos) shortest += ".0";  // still a TOML float
    out += text.substr(at, it->position() - at) + shortest;
    at = it->position() + it->length();
  }
  return out + text.substr(at);
}

std::vector<std::string> split_dots(const std::string& key) {
  std::vector<std::string> parts;
  std::size_t at = 0;
  for (std::size_t dot; (dot = key.find('.', at)) != std::string::npos; at = dot + 1)
    parts.push_back(key.substr(at, dot - at));
  parts.push_back(key.substr(at));
  return parts;
}

std::string join_dots(const std::vector<std::string>& parts, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n && i < parts.size(); ++i) out += (i ? "." : "") + parts[i];
  return out;
}

// An overlay as its leaves: (path, value), a key written "exploit.strategy" (quoted) split
// like a dotted one.
void flatten(const toml::table& t, std::vector<std::string> prefix,
             std::vector<std::pair<std::vector<std::string>, const toml::node*>>& out) {
  for (const auto& [k, v] : t) {
    std::vector<std::string> path = prefix;
    for (auto& part : split_dots(std::string(k.str()))) path.push_back(part);
    if (const toml::table* sub = v.as_table()) flatten(*sub, path, out);
    else out.emplace_back(path, &v);
  }
}

bool is_strategy_key(const std::vector<std::string>& path) {
  return path.size() == 2 && (path[0] == "exploit" || path[0] == "explore") && path[1] == "strategy";
}

// Sets the variant's keys in the base. A new exploit or explore strategy starts without the
// base's strategy options (truncation's `fraction` means nothing to the t-test): the keys of
// that table the config does not declare itself are dropped before the variant's own are set.
void apply_overlay(toml::table& cfg, const toml::table& overlay, const std::string& where) {
  std::vector<std::pair<std::vector<std::string>, const toml::node*>> leaves;
  flatten(overlay, {}, leaves);
  std::stable_partition(leaves.begin(), leaves.end(), [](const auto& l) { return is_strategy_key(l.first); });
  for (const auto& [path, value] : leaves) {
    const std::string key = join_dots(path, path.size());
    for (const auto& part : path)
      if (part.empty()) throw ConfigError(where + ": " + key, "an empty key part");
    toml::table* t = &cfg;
    for (std::size_t i = 0; i + 1 < path.size(); ++i) {
      toml::node* n = t->get(path[i]);
      if (!n) n = &t->insert_or_assign(path[i], toml::table{}).first->second;
      t = n->as_table();
      if (!t)
        throw ConfigError(where + ": " + key,
                          "cannot set it: '" + join_dots(path, i + 1) + "' is not a table in the base config");
    }
    if (is_strategy_key(path)) {
      std::set<std::string> declared;
      for (const auto& s : config_table(path[0]).settings) declared.insert(s.key);
      std::vector<std::string> drop;
      for (const auto& [k, v] : *t)
        if (!declared.count(std::string(k.str()))) drop.emplace_back(k.str());
      for (const auto& k : drop) t->erase(k);
    }
    value->visit([&](const auto& v) { t->insert_or_assign(path.back(), v); });
  }
}

const std::regex& name_pattern() {
  static const std::regex r("[A-Za-z0-9_.-]{1,100}");
  return r;
}

void check_name(const std::string& name, const std::string& where, std::size_t max_len) {
  if (!std::regex_match(name, name_pattern()) || name.size() > max_len || name == "." || name == "..")
    throw ConfigError(where, "'" + name + "' must be 1-" + std::to_string(max_len) +
                                 " letters, digits, '_', '.' or '-' (not '.' or '..')");
}

std::vector<std::uint64_t> read_seeds(Options& top) {
  const nlohmann::json* s = top.raw("seeds");
  const std::string where = top.path("seeds");
  if (!s) throw ConfigError(where, "missing (required): a count (seeds = 5: seeds 0 to 4) or a list of seeds");
  std::vector<std::uint64_t> seeds;
  constexpr std::int64_t kMaxSeeds = 10000;
  if (s->is_number_integer()) {
    const std::int64_t n = s->get<std::int64_t>();
    if (n < 1 || n > kMaxSeeds)
      throw ConfigError(where,
                        "a count of seeds must be 1 to " + std::to_string(kMaxSeeds) + ", got " + std::to_string(n));
    for (std::int64_t i = 0; i < n; ++i) seeds.push_back(static_cast<std::uint64_t>(i));
    return seeds;
  }
  if (!s->is_array() || s->empty() || s->size() > static_cast<std::size_t>(kMaxSeeds))
    throw ConfigError(where, std::string("expected a count (an integer) or a list of 1 to ") +
                                 std::to_string(kMaxSeeds) + " seeds, got " + json_type_name(*s));
  std::set<std::uint64_t> seen;
  for (const auto& v : *s) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0)
      throw ConfigError(where, "every seed must be an integer >= 0, got " + v.dump());
    const auto x = static_cast<std::uint64_t>(v.get<std::int64_t>());
    if (!seen.insert(x).second) throw ConfigError(where, "seed " + std::to_string(x) + " is listed twice");
    seeds.push_back(x);
  }
  return seeds;
}

// A relative plugin path in the base is relative to the base's directory; the generated
// configs are read with the study's origin, so it is made absolute where it names a file.
void anchor_plugin(toml::table& base, const fs::path& base_dir) {
  toml::node* t = base.get("trainable");
  if (!t || !t->as_table()) return;
  toml::node* p = t->as_table()->get("plugin");
  if (!p || !p->as_string()) return;
  const fs::path plugin(p->as_string()->get());
  if (plugin.is_relative() && fs::exists(base_dir / plugin))
    t->as_table()->insert_or_assign("plugin", fs::absolute(base_dir / plugin).lexically_normal().string());
}

}  // namespace

StudySpec parse_study(const std::string& text, const std::string& origin) {
  const nlohmann::json doc = read_toml(text, origin);  // limits, and TOML errors with line and column
  const toml::table root = toml::parse(text, origin);  // the same, as TOML: the variants' order and values
  StudySpec spec;
  spec.origin = origin;
  spec.text = text;
  const fs::path dir = fs::path(origin).parent_path();
  Options top(doc, origin, /*top_level=*/true);

  spec.name = top.string("name", fs::path(origin).stem().string());
  check_name(spec.name, top.path("name"), 60);

  // The base config, checked on its own first: its own errors name its own file.
  toml::table base;
  const nlohmann::json* b = top.raw("base");
  if (!b) throw ConfigError(top.path("base"), "missing (required): a config's path, or a [base] table");
  if (b->is_string()) {
    const fs::path path = dir / b->get<std::string>();
    if (!fs::exists(path)) throw ConfigError(top.path("base"), "no config file at '" + path.string() + "'");
    spec.base = path.lexically_normal().string();
    const ExperimentConfig c = load_config(spec.base);
    base = toml::parse(c.text, spec.base);
    anchor_plugin(base, path.parent_path());
  } else if (b->is_object()) {
    base = *root.get_as<toml::table>("base");
    parse_config(toml_text(base), origin + " [base]");
  } else {
    throw ConfigError(top.path("base"),
                      std::string("expected a config's path (a string) or a table, got ") + json_type_name(*b));
  }

  spec.seeds = read_seeds(top);

  // [variants.NAME], in the file's order.
  const nlohmann::json* v = top.raw("variants");
  const toml::table* vt = root.get_as<toml::table>("variants");
  if (!v || !vt || vt->empty())
    throw ConfigError(top.path("variants"), "missing: give at least one [variants.NAME] table of config keys");
  std::vector<std::pair<toml::source_position, std::string>> order;
  for (const auto& [k, n] : *vt) {
    const std::string name(k.str());
    check_name(name, top.path("variants." + name), 40);
    if (!n.as_table()) throw ConfigError(top.path("variants." + name), "expected a table of config keys");
    order.emplace_back(n.source().begin, name);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b2) {
    return a.first.line != b2.first.line ? a.first.line < b2.first.line : a.first.column < b2.first.column;
  });

  spec.baseline = top.string("baseline", order.front().second);
  if (!vt->get(spec.baseline))
    throw ConfigError(top.path("baseline"), "'" + spec.baseline + "' is not one of the [variants.NAME] tables");
  spec.metric = top.string("metric", "score");
  if (spec.metric != "score" && (spec.metric.rfind("metrics.", 0) != 0 || spec.metric.size() == 8))
    throw ConfigError(top.path("metric"), "'" + spec.metric +
                                              "' must be \"score\" or \"metrics.NAME\" (a metric the trainable "
                                              "reports for its members)");
  spec.lower_is_better = top.boolean("lower_is_better", false);
  // The lineage analysis: replay = "NAME" or a list of names; fixed = "NAME".
  if (const nlohmann::json* r = top.raw("replay")) {
    const std::string where = top.path("replay");
    std::vector<nlohmann::json> names;
    if (r->is_string()) names.push_back(*r);
    else if (r->is_array() && !r->empty()) names.assign(r->begin(), r->end());
    else
      throw ConfigError(where, std::string("expected a variant's name or a list of them, got ") + json_type_name(*r));
    for (const auto& n : names) {
      if (!n.is_string()) throw ConfigError(where, "every entry must be a variant's name (a string), got " + n.dump());
      const std::string name = n.get<std::string>();
      if (!vt->get(name)) throw ConfigError(where, "'" + name + "' is not one of the [variants.NAME] tables");
      if (std::find(spec.replay.begin(), spec.replay.end(), name) != spec.replay.end())
        throw ConfigError(where, "'" + name + "' is listed twice");
      spec.replay.push_back(name);
    }
  }
  spec.fixed = top.string("fixed", "");
  if (!spec.fixed.empty()) {
    if (!vt->get(spec.fixed))
      throw ConfigError(top.path("fixed"), "'" + spec.fixed + "' is not one of the [variants.NAME] tables");
    if (spec.replay.empty())
      throw ConfigError(top.path("fixed"),
                        "the best fixed h is compared with replayed schedules: name the variants to replay "
                        "(replay = [\"NAME\"])");
  }
  top.finish();

  // Every variant's config, through the config's own checks under the variant's name.
  for (const auto& [pos, name] : order) {
    const toml::table& overlay = *vt->get_as<toml::table>(name);
    spec.variants.push_back({name, shortest_floats(toml_text(overlay))});
  }
  for (const std::uint64_t seed : spec.seeds) {
    for (const auto& variant : spec.variants) {
      const std::string where = origin + " [variants." + variant.name + "]";
      toml::table cfg = base;
      apply_overlay(cfg, *vt->get_as<toml::table>(variant.name), where);
      const std::string experiment = spec.name + "-" + variant.name + "-s" + std::to_string(seed);
      if (experiment.size() > 100)
        throw ConfigError(where, "the experiment name '" + experiment +
                                     "' (STUDY-VARIANT-sSEED) is over 100 characters: shorten the names");
      cfg.insert_or_assign("name", experiment);
      cfg.insert_or_assign("seed", static_cast<std::int64_t>(seed));
      const std::string generated = "# pbt study '" + spec.name + "': variant '" + variant.name + "', seed " +
                                    std::to_string(seed) + " (the base config with the variant's keys)\n" +
                                    toml_text(cfg);
      StudyRun run;
      run.variant = variant.name;
      run.seed = seed;
      run.dir = (fs::path("runs") / variant.name / ("seed-" + std::to_string(seed))).string();
      run.config = parse_config(generated, where);
      spec.runs.push_back(std::move(run));
    }
  }
  // A replayed variant's members must copy (else each schedule is one member's own h), and
  // the fixed one's must keep their h (no exploit, no explore). Its first seed's config
  // stands for all: the variant's keys are the same for every seed.
  auto config_of = [&](const std::string& variant) -> const ExperimentConfig& {
    for (const auto& r : spec.runs)
      if (r.variant == variant) return r.config;
    throw Error("no run of variant '" + variant + "'");
  };
  for (const auto& name : spec.replay)
    if (config_of(name).exploit == "none")
      throw ConfigError(top.path("replay"), "'" + name +
                                                "' has exploit.strategy = \"none\": its members never copy, so "
                                                "there is no inherited schedule to replay");
  if (!spec.fixed.empty()) {
    const ExperimentConfig& c = config_of(spec.fixed);
    if (c.exploit != "none" || c.explore_always)
      throw ConfigError(top.path("fixed"), "'" + spec.fixed +
                                               "' must keep each member's h fixed (exploit.strategy = \"none\", "
                                               "explore.always = false): it stands for the best fixed h");
    if (std::find(spec.replay.begin(), spec.replay.end(), spec.fixed) != spec.replay.end())
      throw ConfigError(top.path("fixed"), "'" + spec.fixed + "' cannot be both replayed and the fixed h");
  }
  return spec;
}

StudySpec load_study(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw ConfigError(path, "cannot read the study file");
  if (!S_ISREG(st.st_mode)) throw ConfigError(path, "not a regular file; give a TOML study file");
  if (static_cast<std::uintmax_t>(st.st_size) > kMaxConfigBytes)
    throw ConfigError(path, "the study file is over " + std::to_string(kMaxConfigBytes) + " bytes");
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  if (!in) throw ConfigError(path, "cannot read the study file");
  return parse_study(s.str(), path);
}

std::string default_study_dir(const std::string& study_path) {
  fs::path p(study_path);
  return (p.parent_path() / (p.stem().string() + ".study")).string();
}

// ---------------------------------------------------------------------------------------

std::optional<double> quantile(std::vector<double> v, double q) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  const double h = (static_cast<double>(v.size()) - 1) * q;
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

double sign_test_p(int wins, int losses) {
  const int n = wins + losses;
  if (n == 0) return 1;
  const boost::math::binomial_distribution<double> b(n, 0.5);
  return std::min(1.0, 2 * boost::math::cdf(b, std::min(wins, losses)));
}

double wilcoxon_signed_rank_p(const std::vector<double>& differences, bool* exact, bool force_normal) {
  std::vector<double> d;
  for (double x : differences)
    if (x != 0 && std::isfinite(x)) d.push_back(x);
  const int n = static_cast<int>(d.size());
  if (exact) *exact = true;
  if (n == 0) return 1;
  // Ranks of |d|, ties given their mean rank; doubled, so every rank is an integer.
  std::vector<int> idx(n);
  for (int i = 0; i < n; ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](int a, int b) { return std::fabs(d[a]) < std::fabs(d[b]); });
  std::vector<int> rank2(n);
  double tie_term = 0;  // sum of t^3 - t over groups of ties
  for (int i = 0; i < n;) {
    int j = i;
    while (j + 1 < n && std::fabs(d[idx[j + 1]]) == std::fabs(d[idx[i]])) ++j;
    for (int k = i; k <= j; ++k) rank2[idx[k]] = i + j + 2;  // 2 x the mean of ranks i+1 .. j+1
    const double t = j - i + 1;
    tie_term += t * t * t - t;
    i = j + 1;
  }
  long w2 = 0;  // 2 x W+
  for (int i = 0; i < n; ++i)
    if (d[i] > 0) w2 += rank2[i];
  const long total2 = static_cast<long>(n) * (n + 1);  // 2 x the sum of all ranks

  if (n <= kWilcoxonExactMax && !force_normal) {
    // Under the null each sign is + or - with probability 1/2 independently: the
    // distribution of 2 W+ by counting, one rank at a time.
    std::vector<double> p(static_cast<std::size_t>(total2) + 1, 0.0);
    p[0] = 1;
    long reach = 0;
    for (int i = 0; i < n; ++i) {
      const int r = rank2[i];
      for (long s = reach; s >= 0; --s) {
        if (p[s] == 0) continue;
        p[s + r] += p[s] * 0.5;
        p[s] *= 0.5;
      }
      reach += r;
    }
    double below = 0, above = 0;  // P(2W+ <= w2), P(2W+ >= w2)
    for (long s = 0; s <= total2; ++s) {
      if (s <= w2) below += p[s];
      if (s >= w2) above += p[s];
    }
    return std::min(1.0, 2 * std::min(below, above));
  }
  if (exact) *exact = false;
  const double w = w2 / 2.0;
  const double mean = n * (n + 1.0) / 4;
  const double var = n * (n + 1.0) * (2 * n + 1.0) / 24 - tie_term / 48;
  if (var <= 0) return 1;
  const double z = std::max(0.0, std::fabs(w - mean) - 0.5) / std::sqrt(var);
  const boost::math::normal_distribution<double> normal;
  return std::min(1.0, 2 * boost::math::cdf(boost::math::complement(normal, z)));
}

PairedComparison compare_paired(const std::vector<double>& differences, bool lower_is_better) {
  PairedComparison c;
  std::vector<double> d;
  for (double x : differences)
    if (std::isfinite(x)) d.push_back(x);
  c.pairs = static_cast<int>(d.size());
  for (double x : d) {
    const double better = lower_is_better ? -x : x;
    if (better > 0) ++c.wins;
    else if (better < 0) ++c.losses;
    else ++c.ties;
  }
  c.median_difference = quantile(d, 0.5);
  c.wilcoxon_p = wilcoxon_signed_rank_p(d, &c.exact);
  c.sign_p = sign_test_p(c.wins, c.losses);
  return c;
}

}  // namespace pbt
