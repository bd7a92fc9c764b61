#pragma once
// Text that several subcommands print the same way: scores, the population table, times.
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/store.hpp"

namespace pbt::cli {

std::string fmt_score(const std::optional<double>& s);      // 6 significant digits, "-" for none
nlohmann::json score_json(const std::optional<double>& s);  // null for none
std::string now_text();                                     // local time, "YYYY-MM-DD HH:MM:SS"

// member, step, score, (held by,) h: one line each, then a line per failed member.
void print_population(std::ostream& out, const std::vector<MemberState>& pop, double now, bool show_owner);

}  // namespace pbt::cli
