#include <gtest/gtest.h>

#include <tuple>

#include "pbt/pbt.hpp"
#include "common/toy_config.hpp"

using namespace pbt;

namespace {
Event copy(int member, std::int64_t step, int donor, std::int64_t donor_step, Hyperparams new_h,
           CopyMode copied = CopyMode::all) {
  Event e;
  e.member = member;
  e.step = step;
  e.kind = EventKind::exploit;
  e.donor = donor;
  e.donor_step = donor_step;
  e.copied = copied;
  e.new_h = std::move(new_h);
  return e;
}
Hyperparams H(double x) { return {{"x", x}}; }
// A schedule as (member, from, to, x) rows.
using Pieces = std::vector<std::tuple<int, std::int64_t, std::int64_t, double>>;
Pieces pieces(const InheritedSchedule& s) {
  Pieces out;
  for (const auto& seg : s.segments)
    out.emplace_back(seg.member, seg.from_step, seg.to_step, std::get<double>(seg.h.at("x")));
  return out;
}
}  // namespace

TEST(Lineage, FollowsCopiesBackToTheRoot) {
  // Member 1 copies member 0 at step 4 (member 0 was at step 4), then member 0 explores
  // without a copy at step 8, then member 0 copies member 1 at step 12 (member 1 at 8).
  std::vector<Event> evs = {copy(1, 4, 0, 4, H(0.5)), copy(0, 8, -1, 0, H(0.7), CopyMode::none),
                            copy(0, 12, 1, 8, H(0.9), CopyMode::weights)};
  evs[1].kind = EventKind::explore;
  std::vector<Hyperparams> initial = {H(0.1), H(0.2)};
  auto s = Lineage(evs, initial).schedule_of(0, 16);
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
  auto before = Lineage(evs, initial).schedule_of(0, 10);
  EXPECT_EQ(before.root, 0);
  ASSERT_EQ(before.segments.size(), 2u);
  EXPECT_EQ(before.segments[0].to_step, 8);
  EXPECT_EQ(before.segments[1].h, H(0.7));
  EXPECT_EQ(before.segments[1].from_step, 8);
  EXPECT_EQ(before.segments[1].to_step, 10);
}

TEST(Lineage, CopyingOnlyHyperparametersKeepsTheOwnModel) {
  std::vector<Event> evs = {copy(1, 4, 0, 4, H(0.5), CopyMode::hyperparameters)};
  auto s = Lineage(evs, {H(0.1), H(0.2)}).schedule_of(1, 8);
  EXPECT_EQ(s.root, 1);
  ASSERT_EQ(s.segments.size(), 2u);
  EXPECT_EQ(s.segments[0].h, H(0.2));
  EXPECT_EQ(s.segments[1].h, H(0.5));
}

// A hand-worked log with a copy of each mode and a recover (three members, ready every 4):
//  #0 step 4: m1 copies all of m0 (m0 at 4), explores to h 0.5
//  #1 step 4: m2 explores alone to h 0.6
//  #2 step 8: m2 copies only m1's hyperparameters (m1 at 8): h 0.55, its own model stays
//  #3 step 8: m0 recovers from m2's weights (m2 at 8), keeping its own h 0.1
//  #4 step 12: m1 copies m0's weights only (m0 at 12), keeping its own h, explored to 0.45
TEST(Lineage, HandWorkedLogWithEveryCopyModeAndARecover) {
  std::vector<Event> evs = {copy(1, 4, 0, 4, H(0.5), CopyMode::all), copy(2, 4, -1, 0, H(0.6), CopyMode::none),
                            copy(2, 8, 1, 8, H(0.55), CopyMode::hyperparameters),
                            copy(0, 8, 2, 8, H(0.1), CopyMode::weights),
                            copy(1, 12, 0, 12, H(0.45), CopyMode::weights)};
  evs[1].kind = EventKind::explore;
  evs[3].kind = EventKind::recover;
  const Lineage L(evs, {H(0.1), H(0.2), H(0.3)});

  // Who copied whom: every event with a donor; the weights moved in all but the h-only copy.
  ASSERT_EQ(L.copies().size(), 4u);
  EXPECT_EQ(L.copies()[0].event, 0);
  EXPECT_TRUE(L.copies()[0].weights);
  EXPECT_EQ(L.copies()[1].event, 2);
  EXPECT_FALSE(L.copies()[1].weights);
  EXPECT_EQ(L.copies()[2].kind, EventKind::recover);
  EXPECT_TRUE(L.copies()[2].weights);
  EXPECT_EQ(L.copies()[3].copied, CopyMode::weights);
  EXPECT_TRUE(L.copies()[3].weights);

  // m2's model is its own: a fresh model trained under 0.3, 0.6, then the copied h 0.55.
  auto m2 = L.schedule_of(2, 12);
  EXPECT_EQ(m2.root, 2);
  EXPECT_EQ(pieces(m2), (Pieces{{2, 0, 4, 0.3}, {2, 4, 8, 0.6}, {2, 8, 12, 0.55}}));
  EXPECT_EQ(m2.segments[2].event, 2);
  // m0 recovered from m2 at 8: m2's steps 0-8, then m0's own 8-12 under its own h.
  auto m0 = L.schedule_of(0, 12);
  EXPECT_EQ(m0.root, 2);
  EXPECT_EQ(pieces(m0), (Pieces{{2, 0, 4, 0.3}, {2, 4, 8, 0.6}, {0, 8, 12, 0.1}}));
  // m1 at 16: m0's model at 12 (m2's to 8, then m0's), then m1's own 12-16 under 0.45...
  auto m1 = L.schedule_of(1, 16);
  EXPECT_EQ(m1.root, 2);
  EXPECT_EQ(pieces(m1), (Pieces{{2, 0, 4, 0.3}, {2, 4, 8, 0.6}, {0, 8, 12, 0.1}, {1, 12, 16, 0.45}}));
  EXPECT_EQ(m1.total_steps(), 16);
  // ...but at 10, before that copy: m0's fresh model at 4, then m1's own 4-10 under 0.5.
  auto m1_early = L.schedule_of(1, 10);
  EXPECT_EQ(m1_early.root, 0);
  EXPECT_EQ(pieces(m1_early), (Pieces{{0, 0, 4, 0.1}, {1, 4, 10, 0.5}}));

  // History: m1's own counter, copies not followed; each segment names what set its h.
  auto h1 = L.history_of(1, 16);
  ASSERT_EQ(h1.size(), 3u);
  EXPECT_EQ(h1[0].event, -1);
  EXPECT_EQ(h1[0].h, H(0.2));
  EXPECT_EQ(h1[1].event, 0);
  EXPECT_EQ(h1[1].to_step, 12);
  EXPECT_EQ(h1[2].event, 4);
  EXPECT_EQ(h1[2].h, H(0.45));
  // A member with no steps yet still has the h it starts with.
  auto none = Lineage({}, {H(0.1)}).history_of(0, 0);
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].h, H(0.1));

  EXPECT_THROW(Lineage(evs, {H(0.1), H(0.2)}).schedule_of(2, 12), Error);  // the log names member 2
}

TEST(Lineage, ReplayOfTheToyReproducesEveryMembersScoreExactly) {
  // The toy is deterministic, so replaying the inherited schedule from scratch must land
  // on exactly the score the member reached inside the population.
  for (CopyMode copy_what : {CopyMode::weights, CopyMode::all}) {
    const std::string text = test::ToyConfig()
                                 .seed(4)
                                 .steps(60)
                                 .set("exploit.fraction", "0.25")
                                 .set("exploit.copy", test::ToyConfig::quoted(to_string(copy_what)));
    ExperimentConfig c = parse_config(text, "t.toml");
    auto store = open_store("memory:");
    create_or_join(*store, c);
    WorkerOptions opt;
    opt.id = "w";
    run_worker(*store, "toy", opt);
    auto events = store->events("toy");
    ASSERT_FALSE(events.empty());
    const Lineage lineage(events, initial_hyperparams(c));
    int chained = 0;
    for (const auto& m : store->population("toy")) {
      auto s = lineage.schedule_of(m.id, m.step);
      chained += s.root != m.id;
      ReplayResult r = replay(c, s);
      EXPECT_NEAR(r.score.value, *m.score, 1e-12) << to_string(copy_what) << " member " << m.id;
    }
    EXPECT_GT(chained, 0) << "some final model should descend from another member";
  }
}
