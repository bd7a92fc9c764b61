#include "cli/print.hpp"

#include <ctime>
#include <iomanip>
#include <sstream>

#include "pbt/hyperparams.hpp"

namespace pbt::cli {

std::string now_text() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return buf;
}

std::string fmt_score(const std::optional<double>& s) {
  if (!s) return "-";
  std::ostringstream o;
  o << std::setprecision(6) << *s;
  return o.str();
}

nlohmann::json score_json(const std::optional<double>& s) { return s ? nlohmann::json(*s) : nlohmann::json(nullptr); }

Lineage lineage_of(Store& store, const ExperimentConfig& cfg) {
  return Lineage(store.events(cfg.name), initial_hyperparams(cfg));
}

std::string fmt_efficiency(const std::optional<double>& e) {
  if (!e) return "-";
  std::ostringstream o;
  o << std::setprecision(3) << *e;
  return o.str();
}

nlohmann::json trained_json(const Trained& t) {
  return {{"trained_steps", t.steps ? nlohmann::json(*t.steps) : nlohmann::json(nullptr)},
          {"efficiency", t.efficiency ? nlohmann::json(*t.efficiency) : nlohmann::json(nullptr)}};
}

void print_population(std::ostream& out, const std::vector<MemberState>& pop, const std::vector<Trained>& trained,
                      double now, bool show_owner) {
  out << std::left << std::setw(8) << "member" << std::setw(8) << "step" << std::setw(9) << "trained" << std::setw(7)
      << "eff" << std::setw(14) << "score";
  if (show_owner) out << std::setw(22) << "held by";
  out << "hyperparameters\n";
  for (std::size_t i = 0; i < pop.size(); ++i) {
    const MemberState& m = pop[i];
    const Trained t = i < trained.size() ? trained[i] : Trained{};
    out << std::left << std::setw(8) << m.id << std::setw(8) << m.step << std::setw(9)
        << (t.steps ? std::to_string(*t.steps) : "-") << std::setw(7) << fmt_efficiency(t.efficiency) << std::setw(14)
        << fmt_score(m.score);
    if (show_owner) {
      std::string held = m.done     ? "(done)"
                         : m.failed ? "(failed)"
                                    : (!m.owner.empty() && m.lease_expires > now ? m.owner : "-");
      out << std::setw(22) << held;
    }
    out << to_string(m.h) << "\n";
  }
  for (const auto& m : pop)
    if (m.failed)
      out << "member " << m.id << " FAILED after " << m.failures << " failed intervals at step " << m.step << ": "
          << m.last_error << "\n";
}

}  // namespace pbt::cli
