// `pbt export`: scores, hyperparameters over time, the members and events as CSV or JSON lines.
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <optional>
#include <set>
#include <sstream>

#include "pbt/report.hpp"
#include "report/run.hpp"

namespace pbt::report {

namespace {

std::string num(double v) {
  if (is_diverged(v)) return "";  // a diverged score: empty field / null
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back the same
  return std::string(buf, r.ptr);
}

// RFC 4180: quote a field holding a comma, quote or line break; double the quotes.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_value(const Value& v) {
  if (auto d = std::get_if<double>(&v)) return num(*d);
  if (auto i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  return csv_field(std::get<std::string>(v));
}

nlohmann::json json_num(double v) {
  if (is_diverged(v)) return nullptr;
  return v;
}

nlohmann::json json_h(const Hyperparams& h) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : h) {
    if (auto d = std::get_if<double>(&v)) j[k] = json_num(*d);
    else if (auto i = std::get_if<std::int64_t>(&v)) j[k] = *i;
    else j[k] = std::get<std::string>(v);
  }
  return j;
}

std::string line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// Column order for hyperparameters: the config's, else every name seen, sorted.
std::vector<std::string> param_names(const RunData& run) {
  if (auto cfg = config_of(run)) {
    std::vector<std::string> out;
    for (const auto& p : cfg->space.params()) out.push_back(p.name);
    return out;
  }
  std::set<std::string> names;
  for (const auto& m : run.population)
    for (const auto& [k, v] : m.h) names.insert(k);
  for (const auto& e : run.events) {
    for (const auto& [k, v] : e.old_h) names.insert(k);
    for (const auto& [k, v] : e.new_h) names.insert(k);
  }
  return {names.begin(), names.end()};
}

std::string csv_h(const Hyperparams& h, const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    out += ",";
    auto it = h.find(n);
    if (it != h.end()) out += csv_value(it->second);
  }
  return out;
}

// The CSV header: the fixed columns, then one per hyperparameter under each prefix.
std::string csv_header(const std::string& fixed, const std::vector<std::string>& names,
                       std::initializer_list<const char*> prefixes) {
  std::string out = fixed;
  for (const char* prefix : prefixes)
    for (const auto& n : names) out += "," + csv_field(prefix + n);
  return out + "\n";
}

}  // namespace

std::string export_scores(const RunData& run, Format f) {
  std::ostringstream o;
  if (f == Format::csv) o << "member,step,score\n";
  for (const auto& p : run.scores) {
    if (f == Format::csv) o << p.member << "," << p.step << "," << num(p.score) << "\n";
    else o << line({{"member", p.member}, {"step", p.step}, {"score", json_num(p.score)}});
  }
  return o.str();
}

std::string export_hyperparameters(const RunData& run, Format f) {
  const auto names = param_names(run);
  const Lineage lineage = lineage_of(run);
  std::ostringstream o;
  if (f == Format::csv) o << csv_header("member,from_step,to_step,cause,donor", names, {""});
  for (const auto& s : hyperparameter_history(run, lineage)) {
    const std::string cause = cause_of(lineage, s);
    const int donor = donor_of(lineage, s);
    if (f == Format::csv) {
      o << s.member << "," << s.from_step << "," << s.to_step << "," << cause << ","
        << (donor >= 0 ? std::to_string(donor) : "") << csv_h(s.h, names) << "\n";
    } else {
      o << line({{"member", s.member},
                 {"from_step", s.from_step},
                 {"to_step", s.to_step},
                 {"cause", cause},
                 {"donor", donor >= 0 ? nlohmann::json(donor) : nlohmann::json(nullptr)},
                 {"h", json_h(s.h)}});
    }
  }
  return o.str();
}

std::string export_members(const RunData& run, Format f) {
  const auto names = param_names(run);
  const auto trained = trained_of(lineage_of(run), run.population);
  std::ostringstream o;
  if (f == Format::csv) o << csv_header("member,step,trained_steps,efficiency,score,done,failed", names, {""});
  for (std::size_t i = 0; i < run.population.size(); ++i) {
    const MemberState& m = run.population[i];
    const Trained& t = trained[i];
    if (f == Format::csv) {
      o << m.id << "," << m.step << "," << (t.steps ? std::to_string(*t.steps) : "") << ","
        << (t.efficiency ? num(*t.efficiency) : "") << "," << (m.score ? num(*m.score) : "") << ","
        << (m.done ? "true" : "false") << "," << (m.failed ? "true" : "false") << csv_h(m.h, names) << "\n";
    } else {
      o << line({{"member", m.id},
                 {"step", m.step},
                 {"trained_steps", t.steps ? nlohmann::json(*t.steps) : nlohmann::json(nullptr)},
                 {"efficiency", t.efficiency ? nlohmann::json(*t.efficiency) : nlohmann::json(nullptr)},
                 {"score", m.score ? json_num(*m.score) : nlohmann::json(nullptr)},
                 {"done", m.done},
                 {"failed", m.failed},
                 {"h", json_h(m.h)}});
    }
  }
  return o.str();
}

std::string export_events(const RunData& run, Format f) {
  const auto names = param_names(run);
  std::ostringstream o;
  if (f == Format::csv)
    o << csv_header("member,step,kind,donor,donor_step,copied,old_score,donor_score,new_score,worker,time", names,
                    {"old.", "new."});
  for (const auto& e : run.events) {
    if (f == Format::csv) {
      o << e.member << "," << e.step << "," << to_string(e.kind) << "," << (e.donor >= 0 ? std::to_string(e.donor) : "")
        << "," << (e.donor >= 0 ? std::to_string(e.donor_step) : "") << "," << to_string(e.copied) << ","
        << num(e.old_score) << "," << (e.donor >= 0 ? num(e.donor_score) : "") << ","
        << (e.new_score ? num(*e.new_score) : "") << "," << csv_field(e.worker) << "," << num(e.time)
        << csv_h(e.old_h, names) << csv_h(e.new_h, names) << "\n";
    } else {
      o << line({{"member", e.member},
                 {"step", e.step},
                 {"kind", e.kind},
                 {"donor", e.donor >= 0 ? nlohmann::json(e.donor) : nlohmann::json(nullptr)},
                 {"donor_step", e.donor >= 0 ? nlohmann::json(e.donor_step) : nlohmann::json(nullptr)},
                 {"copied", e.copied},
                 {"old_h", json_h(e.old_h)},
                 {"new_h", json_h(e.new_h)},
                 {"old_score", json_num(e.old_score)},
                 {"donor_score", e.donor >= 0 ? json_num(e.donor_score) : nlohmann::json(nullptr)},
                 {"new_score", e.new_score ? json_num(*e.new_score) : nlohmann::json(nullptr)},
                 {"worker", e.worker},
                 {"time", e.time}});
    }
  }
  return o.str();
}

}  // namespace pbt::report
