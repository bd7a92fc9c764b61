#include <gtest/gtest.h>

#include "common/toy_config.hpp"
#include "pbt/pbt.hpp"

using namespace pbt;

namespace {
Event copy(int member, std::int64_t step, int donor, std::int64_t donor_step, Hyperparams new_h,
           std::string copied = "all") {
  Event e;
  e.member = member;
  e.step = step;
  e.kind = "exploit";
  e.donor = donor;
  e.donor_step = donor_step;
  e.copied = std::move(copied);
  e.new_h = std::move(new_h);
  return e;
}
Hyperparams H(double x) { return {{"x", x}}; }
}  // namespace

TEST(Lineage, FollowsCopiesBackToTheRoot) {
  // Member 1 copies member 0 at step 4 (member 0 was at step 4), then member 0 explores
  // without a copy at step 8, then member 0 copies member 1 at step 12 (member 1 at 8).
  std::vector<Event> evs = {copy(1, 4, 0, 4, H(0.5)), copy(0, 8, -1, 0, H(0.7), ""),
                            copy(0, 12, 1, 8, H(0.9), "weights")};
  evs[1].kind = "explore";
  std::vector<Hyperparams> initial = {H(0.1), H(0.2)};
  auto s = inherited_schedule(evs, initial, 0, 16);
  EXPECT_EQ(s.root, 0);
  ASSERT_EQ(s.segments.size(), 3u);
  EXPECT_EQ(s.segments[0].member, 0);  // member 0's first 4 steps under its initial h
  EXPECT_EQ(s.segments[0].from_step, 0);
  EXPECT_EQ(s.segments[0].to_step, 4);
  EXPECT_EQ(s.segments[0].h, H(0.1));
  EXPECT_EQ(s.segments[1].member, 1);  // then member 1's steps 4..8 under the copied, explored h
  EXPECT_EQ(s.segments[1].from_step, 4);
  EXPECT_EQ(s.segments[1].to_step, 8);
  EXPECT_EQ(s.segments[1].h, H(0.5));
  EXPECT_EQ(s.segments[2].member, 0);  // then member 0's own steps 12..16
  EXPECT_EQ(s.segments[2].h, H(0.9));
  EXPECT_EQ(s.total_steps(), 12);

  // Member 0's explore at step 8 is not in this lineage (its weights were replaced at 12),
  // but it is in member 0's schedule before the copy.
  auto before = inherited_schedule(evs, initial, 0, 10);
  EXPECT_EQ(before.root, 0);
  ASSERT_EQ(before.segments.size(), 2u);
  EXPECT_EQ(before.segments[0].to_step, 8);
  EXPECT_EQ(before.segments[1].h, H(0.7));
  EXPECT_EQ(before.segments[1].from_step, 8);
  EXPECT_EQ(before.segments[1].to_step, 10);
}

TEST(Lineage, CopyingOnlyHyperparametersKeepsTheOwnModel) {
  std::vector<Event> evs = {copy(1, 4, 0, 4, H(0.5), "hyperparameters")};
  auto s = inherited_schedule(evs, {H(0.1), H(0.2)}, 1, 8);
  EXPECT_EQ(s.root, 1);
  ASSERT_EQ(s.segments.size(), 2u);
  EXPECT_EQ(s.segments[0].h, H(0.2));
  EXPECT_EQ(s.segments[1].h, H(0.5));
}

TEST(Lineage, ReplayOfTheToyReproducesEveryMembersScoreExactly) {
  // The toy is deterministic, so replaying the inherited schedule from scratch must land
  // on exactly the score the member reached inside the population.
  for (const char* copy_what : {"weights", "all"}) {
    const std::string text = test::ToyConfig()
                                 .seed(4)
                                 .steps(60)
                                 .set("exploit.fraction", "0.25")
                                 .set("exploit.copy", test::ToyConfig::quoted(copy_what));
    ExperimentConfig c = parse_config(text, "t.toml");
    auto store = open_store("memory:");
    create_or_join(*store, c);
    WorkerOptions opt;
    opt.id = "w";
    run_worker(*store, "toy", opt);
    auto events = store->events("toy");
    ASSERT_FALSE(events.empty());
    int chained = 0;
    for (const auto& m : store->population("toy")) {
      auto s = inherited_schedule(events, initial_hyperparams(c), m.id, m.step);
      chained += s.root != m.id;
      ReplayResult r = replay(c, s);
      EXPECT_NEAR(r.score.value, *m.score, 1e-12) << copy_what << " member " << m.id;
    }
    EXPECT_GT(chained, 0) << "some final model should descend from another member";
  }
}
