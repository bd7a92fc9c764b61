#include "pbt/event.hpp"

#include "pbt/error.hpp"

namespace pbt {

std::string to_string(EventKind k) {
  switch (k) {
    case EventKind::exploit: return "exploit";
    case EventKind::explore: return "explore";
    case EventKind::recover: return "recover";
  }
  return "?";
}

std::string to_string(CopyMode m) {
  switch (m) {
    case CopyMode::all: return "all";
    case CopyMode::weights: return "weights";
    case CopyMode::hyperparameters: return "hyperparameters";
    case CopyMode::none: return "";
  }
  return "?";
}

EventKind parse_event_kind(std::string_view text) {
  for (EventKind k : {EventKind::exploit, EventKind::explore, EventKind::recover})
    if (text == to_string(k)) return k;
  throw Error("unknown event kind '" + std::string(text) + "' (expected exploit, explore or recover)");
}

CopyMode parse_copy_mode(std::string_view text) {
  for (CopyMode m : {CopyMode::all, CopyMode::weights, CopyMode::hyperparameters, CopyMode::none})
    if (text == to_string(m)) return m;
  throw Error("unknown copy mode '" + std::string(text) + "' (expected all, weights, hyperparameters or nothing)");
}

}  // namespace pbt
