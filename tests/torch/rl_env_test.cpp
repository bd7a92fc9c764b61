// The classic-control environments against the published Gym equations, worked by hand
// here (CartPole-v1, Pendulum-v1) or transcribed a second time (Acrobot-v1's RK4).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "trainables/torch/rl/envs.hpp"

namespace pbt::rl {
namespace {

constexpr double kPi = 3.14159265358979323846;

TEST(RlEnv, CartPoleOneEulerStepMatchesTheEquations) {
  auto env = make_env("CartPole-v1", 2, 1);
  env->set_state(0, {0.01, -0.02, 0.03, 0.04});
  env->set_state(1, {0.01, -0.02, 0.03, 0.04});
  const float actions[2] = {1, 0};
  env->step(actions);
  for (int i = 0; i < 2; ++i) {
    // Gym: temp = (F + ml thdot^2 sin)/M; thacc = (g sin - cos temp)/(l (4/3 - m cos^2 / M));
    // xacc = temp - ml thacc cos / M; Euler with tau = 0.02 (position first, from old speeds).
    const double F = i == 0 ? 10.0 : -10.0, th = 0.03, thd = 0.04;
    const double temp = (F + 0.05 * thd * thd * std::sin(th)) / 1.1;
    const double thacc =
        (9.8 * std::sin(th) - std::cos(th) * temp) / (0.5 * (4.0 / 3.0 - 0.1 * std::cos(th) * std::cos(th) / 1.1));
    const double xacc = temp - 0.05 * thacc * std::cos(th) / 1.1;
    auto s = env->state(i);
    EXPECT_NEAR(s[0], 0.01 + 0.02 * -0.02, 1e-12);
    EXPECT_NEAR(s[1], -0.02 + 0.02 * xacc, 1e-12);
    EXPECT_NEAR(s[2], 0.03 + 0.02 * 0.04, 1e-12);
    EXPECT_NEAR(s[3], 0.04 + 0.02 * thacc, 1e-12);
    EXPECT_FLOAT_EQ(env->reward()[i], 1.f);
    EXPECT_FALSE(env->terminated()[i]);
  }
  // Pushing right accelerates the cart right and tips the pole left.
  EXPECT_GT(env->state(0)[1], env->state(1)[1]);
  EXPECT_LT(env->state(0)[3], env->state(1)[3]);
}

TEST(RlEnv, CartPoleEndsPastTwelveDegreesOrTheTrack) {
  auto env = make_env("CartPole-v1", 3, 2);
  const double lim = 12 * 2 * kPi / 360;
  env->set_state(0, {0, 0, lim - 1e-4, 1.0});  // the pole passes 12 degrees in this step
  env->set_state(1, {2.399, 1.0, 0, 0});       // the cart leaves the track
  env->set_state(2, {0, 0, 0, 0});             // fine
  const float actions[3] = {1, 1, 1};
  env->step(actions);
  EXPECT_TRUE(env->terminated()[0]);
  EXPECT_TRUE(env->terminated()[1]);
  EXPECT_FALSE(env->terminated()[2]);
  ASSERT_EQ(env->finished_returns().size(), 2u);  // two one-step episodes, +1 each
  EXPECT_DOUBLE_EQ(env->finished_returns()[0], 1.0);
  // An ended copy is reset at once into the +-0.05 box.
  for (int i = 0; i < 2; ++i)
    for (double v : env->state(i)) EXPECT_LE(std::fabs(v), 0.05);
}

TEST(RlEnv, PendulumOneStepMatchesTheEquations) {
  auto env = make_env("Pendulum-v1", 3, 3);
  env->set_state(0, {1.0, 0.5});
  env->set_state(1, {4.0, -7.9});  // angle past pi (normalised) and a speed that gets clipped
  env->set_state(2, {0.0, 0.0});
  const float actions[3] = {1.5f, -5.f, 0.f};  // -5 is clipped to -2
  env->step(actions);
  // reward = -(norm(th)^2 + 0.1 thdot^2 + 0.001 u^2); thdot' = thdot + (3g/2l sin th + 3/(ml^2) u) dt
  EXPECT_NEAR(env->reward()[0], -(1.0 + 0.1 * 0.25 + 0.001 * 2.25), 1e-6);
  EXPECT_NEAR(env->state(0)[1], 0.5 + (15 * std::sin(1.0) + 3 * 1.5) * 0.05, 1e-12);
  EXPECT_NEAR(env->state(0)[0], 1.0 + env->state(0)[1] * 0.05, 1e-12);
  const double an = 4.0 - 2 * kPi;
  EXPECT_NEAR(env->reward()[1], -(an * an + 0.1 * 7.9 * 7.9 + 0.001 * 4), 1e-4);
  EXPECT_DOUBLE_EQ(env->state(1)[1], -8.0);  // -7.9 + (15 sin 4 - 6) 0.05 < -8: clipped
  EXPECT_FLOAT_EQ(env->reward()[2], 0.f);    // upright and still: no cost
  EXPECT_NEAR(env->obs()[0], std::cos(env->state(0)[0]), 1e-6);
  EXPECT_NEAR(env->obs()[1], std::sin(env->state(0)[0]), 1e-6);
}

TEST(RlEnv, PendulumIsTruncatedAfter200Steps) {
  auto env = make_env("Pendulum-v1", 4, 4);
  const float actions[4] = {0, 0, 0, 0};
  for (int t = 1; t <= 200; ++t) {
    env->step(actions);
    for (int i = 0; i < 4; ++i) {
      EXPECT_FALSE(env->terminated()[i]);
      EXPECT_EQ(env->truncated()[i] != 0, t == 200) << "step " << t;
    }
  }
  EXPECT_EQ(env->finished_returns().size(), 4u);
}

// Acrobot-v1's "book" dynamics and RK4, transcribed a second time from Gym's source.
void acrobot_dsdt(const double* s, double a, double* d) {
  const double m1 = 1, m2 = 1, l1 = 1, lc1 = 0.5, lc2 = 0.5, I1 = 1, I2 = 1, g = 9.8;
  const double t1 = s[0], t2 = s[1], w1 = s[2], w2 = s[3];
  const double d1 = m1 * lc1 * lc1 + m2 * (l1 * l1 + lc2 * lc2 + 2 * l1 * lc2 * std::cos(t2)) + I1 + I2;
  const double d2 = m2 * (lc2 * lc2 + l1 * lc2 * std::cos(t2)) + I2;
  const double phi2 = m2 * lc2 * g * std::cos(t1 + t2 - kPi / 2);
  const double phi1 = -m2 * l1 * lc2 * w2 * w2 * std::sin(t2) - 2 * m2 * l1 * lc2 * w2 * w1 * std::sin(t2) +
                      (m1 * lc1 + m2 * l1) * g * std::cos(t1 - kPi / 2) + phi2;
  const double dd2 =
      (a + d2 / d1 * phi1 - m2 * l1 * lc2 * w1 * w1 * std::sin(t2) - phi2) / (m2 * lc2 * lc2 + I2 - d2 * d2 / d1);
  d[0] = w1, d[1] = w2, d[2] = -(d2 * dd2 + phi1) / d1, d[3] = dd2;
}

TEST(RlEnv, AcrobotTorqueAtRestGivesTheBookAcceleration) {
  // At rest, hanging down: d1 = 4.5, d2 = 1.75, phi = 0, so ddtheta2 = a / (1.25 - 1.75^2/4.5).
  const double s[4] = {0, 0, 0, 0};
  double d[4];
  acrobot_dsdt(s, 1.0, d);
  EXPECT_NEAR(d[3], 1.0 / (1.25 - 1.75 * 1.75 / 4.5), 1e-9);
  EXPECT_NEAR(d[2], -1.75 * d[3] / 4.5, 1e-9);
  // The environment from rest under the same torque moves the second link that way.
  auto env = make_env("Acrobot-v1", 2, 5);
  env->set_state(0, {0, 0, 0, 0});
  env->set_state(1, {0, 0, 0, 0});
  const float actions[2] = {2, 1};  // torque +1, and torque 0 (hanging still stays still)
  env->step(actions);
  EXPECT_GT(env->state(0)[3], 0);
  EXPECT_LT(env->state(0)[2], 0);
  for (double v : env->state(1)) EXPECT_NEAR(v, 0.0, 1e-12);
  EXPECT_FLOAT_EQ(env->reward()[0], -1.f);
}

TEST(RlEnv, AcrobotRk4StepMatchesASecondTranscription) {
  auto env = make_env("Acrobot-v1", 1, 6);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> ang(-1.0, 1.0), vel(-2.0, 2.0);
  for (int k = 0; k < 20; ++k) {
    const double s0[4] = {ang(rng), ang(rng), vel(rng), vel(rng)};
    const int a = k % 3;
    env->set_state(0, {s0[0], s0[1], s0[2], s0[3]});
    const float act = static_cast<float>(a);
    env->step(&act);
    double k1[4], k2[4], k3[4], k4[4], y[4], want[4];
    const double dt = 0.2, torque = a - 1.0;
    acrobot_dsdt(s0, torque, k1);
    for (int i = 0; i < 4; ++i) y[i] = s0[i] + dt / 2 * k1[i];
    acrobot_dsdt(y, torque, k2);
    for (int i = 0; i < 4; ++i) y[i] = s0[i] + dt / 2 * k2[i];
    acrobot_dsdt(y, torque, k3);
    for (int i = 0; i < 4; ++i) y[i] = s0[i] + dt * k3[i];
    acrobot_dsdt(y, torque, k4);
    for (int i = 0; i < 4; ++i) want[i] = s0[i] + dt / 6 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
    if (env->terminated()[0]) continue;  // reset: the state is a new episode's
    auto s = env->state(0);
    auto wrap = [](double x) {
      while (x > kPi) x -= 2 * kPi;
      while (x < -kPi) x += 2 * kPi;
      return x;
    };
    EXPECT_NEAR(s[0], wrap(want[0]), 1e-12);
    EXPECT_NEAR(s[1], wrap(want[1]), 1e-12);
    EXPECT_NEAR(s[2], std::clamp(want[2], -4 * kPi, 4 * kPi), 1e-12);
    EXPECT_NEAR(s[3], std::clamp(want[3], -9 * kPi, 9 * kPi), 1e-12);
    EXPECT_NEAR(env->obs()[0], std::cos(s[0]), 1e-6);
    EXPECT_NEAR(env->obs()[5], s[3], 1e-5);
  }
}

TEST(RlEnv, AcrobotEndsWhenTheTipIsAboveTheBar) {
  auto env = make_env("Acrobot-v1", 2, 8);
  env->set_state(0, {kPi, 0, 0, 0});    // both links straight up: -cos t1 - cos(t1+t2) = 2 > 1
  env->set_state(1, {0.1, 0.1, 0, 0});  // hanging down
  const float actions[2] = {1, 1};
  env->step(actions);
  EXPECT_TRUE(env->terminated()[0]);
  EXPECT_FLOAT_EQ(env->reward()[0], 0.f);  // Gym: 0 on the terminal step, -1 otherwise
  EXPECT_FALSE(env->terminated()[1]);
  EXPECT_FLOAT_EQ(env->reward()[1], -1.f);
}

TEST(RlEnv, SeededResetsAndSaveLoadReplayExactly) {
  auto a = make_env("CartPole-v1", 4, 42), b = make_env("CartPole-v1", 4, 42), c = make_env("CartPole-v1", 4, 43);
  EXPECT_EQ(a->obs(), b->obs());
  EXPECT_NE(a->obs(), c->obs());
  const float left[4] = {0, 0, 0, 0};
  for (int t = 0; t < 30; ++t) a->step(left);  // several episodes end and reset
  CheckpointWriter w;
  a->save(w);
  std::vector<std::vector<float>> rest_a;
  for (int t = 0; t < 50; ++t) a->step(left), rest_a.push_back(a->obs());
  auto d = make_env("CartPole-v1", 4, 999);
  CheckpointReader r(w.bytes());
  d->load(r);
  for (int t = 0; t < 50; ++t) {
    d->step(left);
    ASSERT_EQ(d->obs(), rest_a[t]) << "step " << t;
  }
  auto wrong = make_env("Acrobot-v1", 4, 1);
  CheckpointReader r2(w.bytes());
  EXPECT_THROW(wrong->load(r2), CheckpointError);
}

TEST(RlEnv, UnknownNameIsRefusedNamingTheKnownOnes) {
  try {
    make_env("MountainCar-v0", 1, 0);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("MountainCar-v0"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("CartPole-v1"), std::string::npos);
  }
}

}  // namespace
}  // namespace pbt::rl
