#pragma once
// The vocabulary of lineage events: what happened at a ready step (kind) and what a copy
// took from the donor (mode). Stores and exports keep them as their text.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace pbt {

enum class EventKind {
  exploit,  // copied a better member (then explored)
  explore,  // explored without a copy (explore_always)
  recover,  // its own checkpoint was unreadable: continued from another member's weights
};

// What a copy takes from the donor ([exploit] copy in the config); `none` for no copy.
enum class CopyMode { all, weights, hyperparameters, none };

// The stored text: "exploit", "explore", "recover"; "all", "weights", "hyperparameters", "".
std::string to_string(EventKind k);
std::string to_string(CopyMode m);
// The reverse; throws Error naming the text when it is none of them.
EventKind parse_event_kind(std::string_view text);
CopyMode parse_copy_mode(std::string_view text);

constexpr bool copies_weights(CopyMode m) { return m == CopyMode::all || m == CopyMode::weights; }
constexpr bool copies_hyperparameters(CopyMode m) { return m == CopyMode::all || m == CopyMode::hyperparameters; }

// JSON holds the text too (without these, nlohmann would write the enums as numbers).
inline void to_json(nlohmann::json& j, EventKind k) { j = to_string(k); }
inline void to_json(nlohmann::json& j, CopyMode m) { j = to_string(m); }

}  // namespace pbt
