#include "pbt/store.hpp"
#include "pbt/trainable.hpp"

namespace pbt {

const MemberState* best_member(const std::vector<MemberState>& population) {
  const MemberState* best = nullptr;
  for (const auto& m : population)
    if (m.score && !is_diverged(*m.score) && (!best || *m.score > *best->score)) best = &m;
  return best;
}

}  // namespace pbt
