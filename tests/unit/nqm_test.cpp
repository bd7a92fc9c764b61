// The noisy quadratic model (src/trainables/nqm): its checkpoint, its random stream, its
// checks, and the short-horizon bias it exists to show (docs/nqm.md), pinned with fixed seeds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "pbt/error.hpp"
#include "pbt/trainable.hpp"
#include "trainables/nqm/nqm.hpp"

namespace pbt {
namespace {

std::unique_ptr<Trainable> make_nqm(std::uint64_t seed, nlohmann::json options = nlohmann::json::object()) {
  register_builtin_trainables();
  TrainableContext ctx;
  ctx.seed = seed;
  ctx.options = std::move(options);
  ctx.log = [](const std::string&) {};
  return make_trainable("nqm", ctx);
}

NqmTrainable& nqm(std::unique_ptr<Trainable>& t) { return dynamic_cast<NqmTrainable&>(*t); }

std::string save(const Trainable& t) {
  CheckpointWriter w;
  t.save(w);
  return w.take();
}

void load(Trainable& t, const std::string& bytes) {
  CheckpointReader r(bytes);
  t.load(r);
}

Hyperparams lr(double v, double momentum = -1) {
  Hyperparams h{{"lr", v}};
  if (momentum >= 0) h["momentum"] = momentum;
  return h;
}

TEST(Nqm, CheckpointRoundTripIsExact) {
  auto a = make_nqm(7);
  a->apply(lr(0.1, 0.5));
  a->step(50);
  auto bytes = save(*a);
  auto b = make_nqm(99);  // another seed: everything that matters must come from the checkpoint
  load(*b, bytes);
  b->apply(lr(0.1, 0.5));
  EXPECT_EQ(nqm(a).theta(), nqm(b).theta());
  // The velocity and the random stream too: both go on bit for bit.
  a->step(30);
  b->step(30);
  EXPECT_EQ(nqm(a).theta(), nqm(b).theta());
  EXPECT_EQ(a->eval().value, b->eval().value);
  EXPECT_EQ(save(*a), save(*b));
}

TEST(Nqm, ACheckpointOfAnotherDimensionOrKindIsRefused) {
  auto a = make_nqm(1, {{"dim", 10}});
  auto b = make_nqm(1, {{"dim", 20}});
  auto bytes = save(*a);
  try {
    load(*b, bytes);
    ADD_FAILURE() << "loaded a checkpoint of dimension 10 into dimension 20";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("dimension 10"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load(*a, std::string(64, 'x')), CheckpointError);
}

TEST(Nqm, MomentumIsHeavyBallAndStartsFromRest) {
  // Same seed, same noise: one step of heavy ball from v = 0 is one SGD step; after that the
  // velocity carries on, so θ differs.
  auto sgd = make_nqm(5), heavy = make_nqm(5);
  sgd->apply(lr(0.1));
  heavy->apply(lr(0.1, 0.9));
  sgd->step(1);
  heavy->step(1);
  EXPECT_EQ(nqm(sgd).theta(), nqm(heavy).theta());
  sgd->step(1);
  heavy->step(1);
  EXPECT_NE(nqm(sgd).theta(), nqm(heavy).theta());
  // Both still learn: the loss falls from ½ Σ 1/i (2.59 for dim 100).
  heavy->step(200);
  EXPECT_LT(nqm(heavy).true_loss(), 1.0);
  EXPECT_GT(nqm(heavy).true_loss(), 0.0);
}

TEST(Nqm, CopiedReseedsSoTwoCopiesDiverge) {
  auto donor = make_nqm(1);
  donor->apply(lr(0.1));
  donor->step(20);
  auto bytes = save(*donor);
  auto a = make_nqm(2), b = make_nqm(3);
  load(*a, bytes);
  load(*b, bytes);
  a->copied(Copied{0, 20, 11});
  b->copied(Copied{0, 20, 12});
  a->apply(lr(0.1));
  b->apply(lr(0.1));
  a->step(5);
  b->step(5);
  EXPECT_NE(nqm(a).theta(), nqm(b).theta());
  // Without copied() the two would replay the donor's stream: the same θ.
  auto c = make_nqm(4), d = make_nqm(5);
  load(*c, bytes);
  load(*d, bytes);
  c->apply(lr(0.1));
  d->apply(lr(0.1));
  c->step(5);
  d->step(5);
  EXPECT_EQ(nqm(c).theta(), nqm(d).theta());
}

TEST(Nqm, EvalReportsTrueLossAndAnUnbiasedNoisyScore) {
  auto t = make_nqm(3);
  t->apply(lr(0.2));
  t->step(100);
  double truth = nqm(t).true_loss();
  double sum = 0;
  const int n = 400;
  for (int i = 0; i < n; ++i) {
    auto s = t->eval();
    EXPECT_DOUBLE_EQ(s.metrics.at("true_loss").get<double>(), truth);
    sum += -s.value;
  }
  // Mean of 400 minibatch estimates: within 10 standard errors of the truth. One estimate's
  // variance is 2 L noise / eval_batch + dim / 2 (noise / eval_batch)^2, here (L about 0.2)
  // about 4.5e-4: sd 0.02, standard error of the mean 0.001.
  EXPECT_NEAR(sum / n, truth, 0.01);
}

TEST(Nqm, BadOptionsAreRefusedNamingTheField) {
  auto refused = [](nlohmann::json o, const std::string& field) {
    try {
      check_trainable_options("nqm", o, "x.toml: trainable");
      ADD_FAILURE() << "accepted " << o.dump();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("x.toml: trainable." + field), std::string::npos) << e.what();
    }
  };
  register_builtin_trainables();
  refused({{"dim", 0}}, "dim");
  refused({{"spectrum", "flat"}}, "spectrum");
  refused({{"batch", 0}}, "batch");
  refused({{"eval_batch", -1}}, "eval_batch");
  refused({{"noise", -1}}, "noise");
  refused({{"h_min", 2.0}}, "h_min");
  refused({{"dims", 10}}, "dims");  // unknown key
  EXPECT_NO_THROW(check_trainable_options("nqm", {{"dim", 10}, {"spectrum", "log"}}, "x.toml: trainable"));
}

TEST(Nqm, BadHyperparametersAreRefusedNamingThem) {
  auto refused = [](const Hyperparams& h, const std::string& name) {
    try {
      check_trainable_hyperparams("nqm", h, "x.toml: initial[0]");
      ADD_FAILURE() << "accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("'" + name + "'"), std::string::npos) << e.what();
    }
  };
  register_builtin_trainables();
  refused({}, "lr");
  refused(lr(0), "lr");
  refused(lr(-0.1), "lr");
  refused({{"lr", std::string("big")}}, "lr");
  refused(lr(0.1, 1.0), "momentum");
  refused({{"lr", 0.1}, {"wd", 0.1}}, "wd");
  EXPECT_NO_THROW(check_trainable_hyperparams("nqm", lr(0.1, 0.9), "x.toml: initial[0]"));
}

// The short-horizon bias, pinned. Default options (dim 100, h_i = 1/i, noise 1, batch 10,
// θ = 1 at the start), a budget of 2000 steps, intervals of 20, lr on a grid. Every figure is
// the true loss averaged over the same 12 seeds (common random numbers across lrs), so the
// comparisons are between deterministic numbers; the margins are several times the seeds' spread.
// Closed-form expectations (docs/nqm.md) of the figures asserted: fixed lr at 2000 steps
// 0.354, 0.084, 0.015, 0.041, 0.164; greedy 0.022, its lr 0.01 from step 1220. Measured here
// (seeds 1000-1011): 0.353, 0.082, 0.0136, 0.035, 0.137; greedy 0.0265 (lr 0.01 from before
// half-way: on a sampled path greedy lowers lr even sooner); with seeds from 2000, 7000 or
// 123456 instead: best fixed 0.0128-0.0148, next 0.035-0.041, greedy 0.027-0.028.
TEST(Nqm, ShortHorizonSelectionLowersTheLearningRateTooEarly) {
  const std::vector<double> grid{0.01, 0.03, 0.1, 0.3, 1.0};
  const int seeds = 12, budget = 2000, interval = 20;
  std::vector<std::unique_ptr<Trainable>> pop;
  for (int s = 0; s < seeds; ++s) pop.push_back(make_nqm(1000 + s));
  std::vector<std::string> start;
  for (auto& t : pop) start.push_back(save(*t));

  // Runs every seed from `states` for n steps at lr; returns the mean true loss (states updated
  // when `keep`).
  auto run = [&](std::vector<std::string>& states, double v, int n, bool keep) {
    double sum = 0;
    for (int s = 0; s < seeds; ++s) {
      load(*pop[s], states[s]);
      pop[s]->apply(lr(v));
      pop[s]->step(n);
      sum += nqm(pop[s]).true_loss();
      if (keep) states[s] = save(*pop[s]);
    }
    return sum / seeds;
  };
  auto argmin = [](const std::vector<double>& v) { return std::min_element(v.begin(), v.end()) - v.begin(); };

  // 1. A fixed lr over the whole budget: 0.1 is best, clearly.
  std::vector<double> full;
  for (double v : grid) full.push_back(run(start, v, budget, false));
  auto best_full = argmin(full);
  ASSERT_EQ(grid[best_full], 0.1);
  for (std::size_t i = 0; i < grid.size(); ++i)
    if (i != static_cast<std::size_t>(best_full)) {
      EXPECT_LT(full[best_full] * 1.5, full[i]) << "lr " << grid[i];
    }

  // 2. From the start, one interval prefers the largest lr: the initial error dominates and a
  // large step removes it fastest. The bias is not there yet.
  std::vector<double> first;
  for (double v : grid) first.push_back(run(start, v, interval, false));
  EXPECT_EQ(grid[argmin(first)], 1.0);

  // 3. Greedy selection, interval by interval, on the true loss (kinder than PBT, which sees
  // noisy scores): once the steep directions sit at their noise floor, a smaller lr lowers the
  // loss of the next interval at once, so greedy keeps lowering lr, below the best fixed lr
  // well before the end, and crawls along the flat directions from then on.
  auto states = start;
  std::vector<double> chosen;
  double greedy_loss = 0;
  for (int k = 0; k < budget / interval; ++k) {
    std::vector<double> next;
    for (double v : grid) next.push_back(run(states, v, interval, false));
    double v = grid[argmin(next)];
    chosen.push_back(v);
    greedy_loss = run(states, v, interval, true);
  }
  std::printf(
      "fixed lr at %d steps: %.4f %.4f %.4f %.4f %.4f; first interval: %.4f %.4f %.4f %.4f %.4f; greedy %.4f, lr at "
      "half-way %g, at the end %g\n",
      budget, full[0], full[1], full[2], full[3], full[4], first[0], first[1], first[2], first[3], first[4],
      greedy_loss, chosen[chosen.size() / 2], chosen.back());
  // At the half-way point greedy already trains with an lr below the best fixed one ...
  EXPECT_LT(chosen[chosen.size() / 2], grid[best_full]);
  EXPECT_LT(chosen.back(), grid[best_full]);
  // ... and ends well behind the best fixed lr.
  EXPECT_GT(greedy_loss, 1.2 * full[best_full]) << "greedy " << greedy_loss << " fixed " << full[best_full];
}

}  // namespace
}  // namespace pbt
