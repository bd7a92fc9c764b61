#pragma once
// Text that several subcommands print the same way: scores, the population table, times.
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/lineage.hpp"
#include "pbt/store.hpp"

namespace pbt::cli {

std::string fmt_score(const std::optional<double>& s);      // 6 significant digits, "-" for none
nlohmann::json score_json(const std::optional<double>& s);  // null for none
std::string now_text();                                     // local time, "YYYY-MM-DD HH:MM:SS"

// The store's event log as a Lineage (the config gives the members and their initial h).
Lineage lineage_of(Store& store, const ExperimentConfig& cfg);
std::string fmt_efficiency(const std::optional<double>& e);  // 3 significant digits, "-" for none
nlohmann::json trained_json(const Trained& t);               // {"trained_steps", "efficiency"}, nulls for none

// member, step, trained steps, efficiency, score, (held by,) h: one line each (`trained`
// parallel to `pop`), then a line per failed member.
void print_population(std::ostream& out, const std::vector<MemberState>& pop, const std::vector<Trained>& trained,
                      double now, bool show_owner);

}  // namespace pbt::cli
