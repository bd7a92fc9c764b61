#include <gtest/gtest.h>

#include <optional>
#include <random>
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
      EXPECT_EQ(lineage.trained_steps(m.id, m.step), s.total_steps()) << "member " << m.id;
      ReplayResult r = replay(c, s);
      EXPECT_NEAR(r.score.value, *m.score, 1e-12) << to_string(copy_what) << " member " << m.id;
    }
    EXPECT_GT(chained, 0) << "some final model should descend from another member";
  }
}

// Trained steps, worked by hand. Five members run at different speeds (asynchronous
// workers), so donors are ahead of or behind their copiers:
//  #0 step 4:  m1 copies all of m0, which is AHEAD (at 8)         -> m1's model: 8 steps
//  #1 step 6:  m2 copies m0's hyperparameters only (m0 at 10)     -> m2 keeps its own model
//  #2 step 8:  m3 recovers from m2's checkpoint at m2's step 4    -> m3's model: 4 steps
//  #3 step 12: m0 copies m1's weights (m1 at 10: 8 + 6 = 14)      -> m0's model: 14 steps
//  #4 step 14: m1 copies all of m2, which is BEHIND (at 6)        -> m1's model: 6 steps
// Final engine steps: m0 20, m1 16, m2 12, m3 10, m4 0 (not started).
TEST(Lineage, TrainedStepsFollowEveryWeightCopyBack) {
  std::vector<Event> evs = {copy(1, 4, 0, 8, H(0.5)), copy(2, 6, 0, 10, H(0.6), CopyMode::hyperparameters),
                            copy(3, 8, 2, 4, H(0.4), CopyMode::weights), copy(0, 12, 1, 10, H(0.5), CopyMode::weights),
                            copy(1, 14, 2, 6, H(0.6))};
  evs[2].kind = EventKind::recover;
  const Lineage L(evs, {H(0.1), H(0.2), H(0.3), H(0.4), H(0.5)});

  const std::vector<std::int64_t> step = {20, 16, 12, 10, 0};
  const std::vector<std::int64_t> trained = {14 + 8, 6 + 2, 12, 4 + 2, 0};
  const std::vector<std::optional<double>> eff = {22.0 / 20, 8.0 / 16, 1.0, 6.0 / 10, std::nullopt};
  for (int m = 0; m < 5; ++m) {
    EXPECT_EQ(L.trained_steps(m, step[m]), trained[m]) << "member " << m;
    EXPECT_EQ(L.trained_steps(m, step[m]), L.schedule_of(m, step[m]).total_steps()) << "member " << m;
    EXPECT_EQ(efficiency(trained[m], step[m]), eff[m]) << "member " << m;
  }
  EXPECT_GT(*efficiency(trained[0], step[0]), 1.0) << "copying a donor ahead is more training than its own steps";

  // At earlier steps only the copies up to then count.
  EXPECT_EQ(L.trained_steps(1, 4), 8);    // right at the copy: the donor's 8 steps
  EXPECT_EQ(L.trained_steps(1, 13), 17);  // 8 + 9 own, before the copy at 14
  EXPECT_EQ(L.trained_steps(0, 11), 11);  // its own fresh model
  EXPECT_EQ(L.trained_steps(0, 12), 14);  // m1 at 10 as published then, not after m1's copy at 14
  EXPECT_EQ(L.trained_steps(3, 7), 7);
  EXPECT_EQ(L.trained_steps(2, 6), 6);  // the h-only copy moved no weights

  // The whole population at once, and its median efficiency: of 1.1, 0.5, 1, 0.6 (m4 at
  // step 0 has none), (0.6 + 1) / 2.
  std::vector<MemberState> pop(5);
  for (int m = 0; m < 5; ++m) {
    pop[m].id = m;
    pop[m].step = step[m];
  }
  const std::vector<Trained> all = trained_of(L, pop);
  ASSERT_EQ(all.size(), 5u);
  for (int m = 0; m < 5; ++m) {
    EXPECT_EQ(all[m].steps, trained[m]) << "member " << m;
    EXPECT_EQ(all[m].efficiency, eff[m]) << "member " << m;
  }
  EXPECT_DOUBLE_EQ(*median_efficiency(all), 0.8);
  EXPECT_EQ(median_efficiency({all[0], all[1], all[2]}), 1.0);  // odd count: the middle one
  EXPECT_FALSE(median_efficiency({all[4]}).has_value());

  // A copy whose chain names a member the experiment lacks: an error, as for schedule_of.
  const Lineage short_of_members(evs, {H(0.1), H(0.2)});
  EXPECT_THROW(short_of_members.trained_steps(1, 16), Error);  // m1 <- m2 (unknown) at 14
  EXPECT_THROW(short_of_members.schedule_of(1, 16), Error);
  EXPECT_EQ(short_of_members.trained_steps(1, 13), 17);  // not before that copy
  EXPECT_EQ(short_of_members.trained_steps(0, 20), 22);
  EXPECT_THROW(short_of_members.trained_steps(7, 1), Error);
  const auto measured = trained_of(short_of_members, {pop[0], pop[1]});
  EXPECT_EQ(measured[0].steps, 22);
  EXPECT_FALSE(measured[1].steps.has_value()) << "nothing to measure, no throw";
  EXPECT_FALSE(measured[1].efficiency.has_value());
}

// trained_steps agrees with the schedules it shortcuts, on a long random asynchronous log
// (fixed seed) with every copy mode, recovers, donors ahead and behind.
TEST(Lineage, TrainedStepsAgreeWithTheSchedulesOnARandomLog) {
  std::mt19937 rng(16);
  const int members = 12;
  std::vector<std::int64_t> at(members, 0);
  std::vector<Event> evs;
  for (int k = 0; k < 600; ++k) {
    const int m = static_cast<int>(rng() % members);
    at[m] += 1 + rng() % 7;
    const int donor = static_cast<int>(rng() % members);
    const CopyMode modes[] = {CopyMode::all, CopyMode::weights, CopyMode::hyperparameters, CopyMode::none};
    Event e =
        copy(m, at[m], donor, at[donor] - static_cast<std::int64_t>(rng() % 3), H(0.1 * (k % 7)), modes[rng() % 4]);
    if (e.copied == CopyMode::none) {
      e.kind = EventKind::explore;
      e.donor = -1;
    } else if (rng() % 10 == 0) {
      e.kind = EventKind::recover;
    }
    e.donor_step = std::max<std::int64_t>(e.donor_step, 0);
    evs.push_back(e);
  }
  const Lineage L(evs, std::vector<Hyperparams>(members, H(0.1)));
  int ahead = 0;
  for (int m = 0; m < members; ++m)
    for (std::int64_t s : {at[m] / 3, at[m] / 2, at[m]}) {
      EXPECT_EQ(L.trained_steps(m, s), L.schedule_of(m, s).total_steps()) << "member " << m << " step " << s;
      ahead += L.trained_steps(m, s) > s;
    }
  EXPECT_GT(ahead, 0);
}

TEST(Lineage, ADonorsOwnCopyAtTheStepTakenIsNotInTheModelTaken) {
  // Seen in a 4-member toy run: member 3 at its step 4 copies member 0 (at 8); member 2, at
  // its step 4, copies member 3 at step 4. Member 3's event reaches the log first (events go
  // out with the next checkpoint, and member 3 trained its next interval sooner), but the
  // model member 2 took is the one member 3 published at step 4: its own, not member 0's.
  std::vector<Event> evs = {copy(3, 4, 0, 8, H(0.5), CopyMode::weights), copy(2, 4, 3, 4, H(0.6), CopyMode::weights)};
  std::vector<Hyperparams> initial = {H(0.1), H(0.2), H(0.3), H(0.4)};
  const Lineage l(evs, initial);
  const auto s = l.schedule_of(2, 12);
  EXPECT_EQ(s.root, 3);
  EXPECT_EQ(pieces(s), (Pieces{{3, 0, 4, 0.4}, {2, 4, 12, 0.6}}));
  EXPECT_EQ(l.trained_steps(2, 12), 12);
  // Member 3's own model at step 4 and later does follow its copy of member 0.
  EXPECT_EQ(pieces(l.schedule_of(3, 8)), (Pieces{{0, 0, 8, 0.1}, {3, 4, 8, 0.5}}));
  EXPECT_EQ(l.trained_steps(3, 8), 12);
  EXPECT_EQ(l.schedule_of(3, 4).root, 0);  // the member itself at the step of its copy: after it
}
