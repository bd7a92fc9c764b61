#pragma once
// Checks on a finished run that end-to-end tests share.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "pbt/store.hpp"

namespace e2e {

// Every member reached the budget, with exactly one score point per step, and its
// checkpoint loads and matches its hash: nothing was lost and nothing published twice.
inline void expect_complete_and_exactly_once(pbt::Store& store, const std::string& experiment, int population,
                                             int steps) {
  auto pop = store.population(experiment);
  ASSERT_EQ(static_cast<int>(pop.size()), population);
  for (const auto& m : pop) {
    EXPECT_TRUE(m.done) << "member " << m.id;
    EXPECT_EQ(m.step, steps) << "member " << m.id;
    EXPECT_EQ(pbt::checkpoint_id(store.checkpoint(m.checkpoint)), m.checkpoint);
  }
  std::map<int, std::multiset<std::int64_t>> seen;
  for (const auto& p : store.scores(experiment)) seen[p.member].insert(p.step);
  for (int m = 0; m < population; ++m) {
    ASSERT_EQ(static_cast<int>(seen[m].size()), steps) << "member " << m;
    for (int s = 1; s <= steps; ++s) EXPECT_EQ(seen[m].count(s), 1u) << "member " << m << " step " << s;
  }
}

}  // namespace e2e
