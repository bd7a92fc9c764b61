// The equations below follow Gym's published classic-control sources (CartPole-v1,
// Acrobot-v1 with the "book" dynamics and RK4, Pendulum-v1), constant for constant.
#include "trainables/torch/rl/envs.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace pbt::rl {

namespace {
constexpr double kPi = 3.14159265358979323846;
}

VecEnv::VecEnv(EnvSpec spec, int n, std::uint64_t seed, int state_dim)
    : spec_(std::move(spec)), n_(n), state_dim_(state_dim), rng_(seed) {
  if (n < 1) throw std::invalid_argument("an environment needs at least one copy");
  state_.assign(static_cast<std::size_t>(n) * state_dim, 0.0);
  t_.assign(n, 0);
  ret_.assign(n, 0.0);
  obs_.assign(static_cast<std::size_t>(n) * spec_.obs_dim, 0.f);
  final_obs_ = obs_;
  reward_.assign(n, 0.f);
  terminated_.assign(n, 0);
  truncated_.assign(n, 0);
}

void VecEnv::reset_copy(int i) {
  double* s = &state_[static_cast<std::size_t>(i) * state_dim_];
  reset_one(s);
  t_[i] = 0;
  ret_[i] = 0;
  observe(s, &obs_[static_cast<std::size_t>(i) * spec_.obs_dim]);
}

void VecEnv::reset_all() {
  for (int i = 0; i < n_; ++i) reset_copy(i);
  started_ = true;
}

void VecEnv::step(const float* actions) {
  if (!started_) reset_all();
  finished_.clear();
  const int adim = spec_.n_actions > 0 ? 1 : spec_.act_dim;
  for (int i = 0; i < n_; ++i) {
    double* s = &state_[static_cast<std::size_t>(i) * state_dim_];
    bool terminal = false;
    const double r = dynamics(s, actions + static_cast<std::size_t>(i) * adim, terminal);
    t_[i]++;
    ret_[i] += r;
    reward_[i] = static_cast<float>(r);
    float* o = &obs_[static_cast<std::size_t>(i) * spec_.obs_dim];
    observe(s, o);
    terminated_[i] = terminal;
    truncated_[i] = !terminal && t_[i] >= spec_.max_steps;
    if (terminal || truncated_[i]) {
      std::copy(o, o + spec_.obs_dim, &final_obs_[static_cast<std::size_t>(i) * spec_.obs_dim]);
      finished_.push_back(ret_[i]);
      reset_copy(i);
    }
  }
}

std::vector<double> VecEnv::state(int i) const {
  auto b = state_.begin() + static_cast<std::ptrdiff_t>(i) * state_dim_;
  return std::vector<double>(b, b + state_dim_);
}

void VecEnv::set_state(int i, const std::vector<double>& s) {
  if (static_cast<int>(s.size()) != state_dim_) throw std::invalid_argument("wrong state size");
  std::copy(s.begin(), s.end(), state_.begin() + static_cast<std::ptrdiff_t>(i) * state_dim_);
  observe(&state_[static_cast<std::size_t>(i) * state_dim_], &obs_[static_cast<std::size_t>(i) * spec_.obs_dim]);
  started_ = true;
}

void VecEnv::save(CheckpointWriter& out) const {
  std::ostringstream r;
  r << rng_;
  out.write_string(spec_.name);
  out.write<std::int32_t>(n_);
  out.write<std::uint8_t>(started_);
  out.write_string(r.str());
  out.write_vector(state_);
  out.write_vector(t_);
  out.write_vector(ret_);
}

void VecEnv::load(CheckpointReader& in) {
  const std::string name = in.read_string();
  const int n = in.read<std::int32_t>();
  if (name != spec_.name || n != n_)
    throw CheckpointError("checkpoint holds " + std::to_string(n) + " copies of " + name + ", this agent runs " +
                          std::to_string(n_) + " copies of " + spec_.name);
  started_ = in.read<std::uint8_t>() != 0;
  std::istringstream r(in.read_string());
  r >> rng_;
  if (!r) throw CheckpointError("cannot read the environment's random state");
  auto st = in.read_vector<double>();
  auto t = in.read_vector<int>();
  auto ret = in.read_vector<double>();
  if (st.size() != state_.size() || t.size() != t_.size() || ret.size() != ret_.size())
    throw CheckpointError("environment state has the wrong size");
  state_ = std::move(st);
  t_ = std::move(t);
  ret_ = std::move(ret);
  for (int i = 0; i < n_; ++i)
    observe(&state_[static_cast<std::size_t>(i) * state_dim_], &obs_[static_cast<std::size_t>(i) * spec_.obs_dim]);
}

namespace {

// CartPole-v1: push the cart left (0) or right (1) with 10 N; +1 per step; the episode
// ends when |x| > 2.4 or |theta| > 12 degrees, or after 500 steps. Explicit Euler, tau 0.02.
class CartPole final : public VecEnv {
 public:
  CartPole(int n, std::uint64_t seed) : VecEnv(env_spec("CartPole-v1"), n, seed, 4) {}

 protected:
  void reset_one(double* s) override {
    for (int k = 0; k < 4; ++k) s[k] = uniform(-0.05, 0.05);
  }
  double dynamics(double* s, const float* a, bool& terminal) const override {
    const double gravity = 9.8, masscart = 1.0, masspole = 0.1, length = 0.5, force_mag = 10.0, tau = 0.02;
    const double total_mass = masspole + masscart, polemass_length = masspole * length;
    double x = s[0], x_dot = s[1], theta = s[2], theta_dot = s[3];
    const double force = a[0] >= 0.5f ? force_mag : -force_mag;
    const double c = std::cos(theta), sn = std::sin(theta);
    const double temp = (force + polemass_length * theta_dot * theta_dot * sn) / total_mass;
    const double thetaacc = (gravity * sn - c * temp) / (length * (4.0 / 3.0 - masspole * c * c / total_mass));
    const double xacc = temp - polemass_length * thetaacc * c / total_mass;
    x += tau * x_dot;
    x_dot += tau * xacc;
    theta += tau * theta_dot;
    theta_dot += tau * thetaacc;
    s[0] = x, s[1] = x_dot, s[2] = theta, s[3] = theta_dot;
    const double theta_limit = 12 * 2 * kPi / 360;
    terminal = x < -2.4 || x > 2.4 || theta < -theta_limit || theta > theta_limit;
    return 1.0;
  }
  void observe(const double* s, float* o) const override {
    for (int k = 0; k < 4; ++k) o[k] = static_cast<float>(s[k]);
  }
};

// Acrobot-v1: torque -1, 0 or +1 on the joint between the links; -1 per step until the
// tip rises one link length above the pivot (-cos t1 - cos(t1 + t2) > 1); 500 steps.
// "Book" dynamics (Sutton & Barto), integrated with one RK4 step of dt = 0.2.
class Acrobot final : public VecEnv {
 public:
  Acrobot(int n, std::uint64_t seed) : VecEnv(env_spec("Acrobot-v1"), n, seed, 4) {}

  // ds/dt for state (t1, t2, dt1, dt2) under torque a (public for the tests).
  static void dsdt(const double* s, double a, double* out) {
    const double m1 = 1.0, m2 = 1.0, l1 = 1.0, lc1 = 0.5, lc2 = 0.5, I1 = 1.0, I2 = 1.0, g = 9.8;
    const double theta1 = s[0], theta2 = s[1], dtheta1 = s[2], dtheta2 = s[3];
    const double d1 = m1 * lc1 * lc1 + m2 * (l1 * l1 + lc2 * lc2 + 2 * l1 * lc2 * std::cos(theta2)) + I1 + I2;
    const double d2 = m2 * (lc2 * lc2 + l1 * lc2 * std::cos(theta2)) + I2;
    const double phi2 = m2 * lc2 * g * std::cos(theta1 + theta2 - kPi / 2.0);
    const double phi1 = -m2 * l1 * lc2 * dtheta2 * dtheta2 * std::sin(theta2) -
                        2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * std::sin(theta2) +
                        (m1 * lc1 + m2 * l1) * g * std::cos(theta1 - kPi / 2) + phi2;
    const double ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1 * dtheta1 * std::sin(theta2) - phi2) /
                            (m2 * lc2 * lc2 + I2 - d2 * d2 / d1);
    const double ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    out[0] = dtheta1, out[1] = dtheta2, out[2] = ddtheta1, out[3] = ddtheta2;
  }

 protected:
  void reset_one(double* s) override {
    for (int k = 0; k < 4; ++k) s[k] = uniform(-0.1, 0.1);
  }
  double dynamics(double* s, const float* a, bool& terminal) const override {
    const double dt = 0.2;
    int ai = static_cast<int>(std::lround(a[0]));
    ai = std::clamp(ai, 0, 2);
    const double torque = ai - 1.0;
    double k1[4], k2[4], k3[4], k4[4], y[4];
    dsdt(s, torque, k1);
    for (int k = 0; k < 4; ++k) y[k] = s[k] + dt / 2 * k1[k];
    dsdt(y, torque, k2);
    for (int k = 0; k < 4; ++k) y[k] = s[k] + dt / 2 * k2[k];
    dsdt(y, torque, k3);
    for (int k = 0; k < 4; ++k) y[k] = s[k] + dt * k3[k];
    dsdt(y, torque, k4);
    for (int k = 0; k < 4; ++k) s[k] = s[k] + dt / 6.0 * (k1[k] + 2 * k2[k] + 2 * k3[k] + k4[k]);
    s[0] = wrap(s[0], -kPi, kPi);
    s[1] = wrap(s[1], -kPi, kPi);
    s[2] = std::clamp(s[2], -4 * kPi, 4 * kPi);
    s[3] = std::clamp(s[3], -9 * kPi, 9 * kPi);
    terminal = -std::cos(s[0]) - std::cos(s[1] + s[0]) > 1.0;
    return terminal ? 0.0 : -1.0;
  }
  void observe(const double* s, float* o) const override {
    o[0] = static_cast<float>(std::cos(s[0]));
    o[1] = static_cast<float>(std::sin(s[0]));
    o[2] = static_cast<float>(std::cos(s[1]));
    o[3] = static_cast<float>(std::sin(s[1]));
    o[4] = static_cast<float>(s[2]);
    o[5] = static_cast<float>(s[3]);
  }

 private:
  static double wrap(double x, double lo, double hi) {
    const double diff = hi - lo;
    while (x > hi) x -= diff;
    while (x < lo) x += diff;
    return x;
  }
};

// Pendulum-v1: swing up and hold a pendulum with a torque in [-2, 2]; reward
// -(angle^2 + 0.1 thdot^2 + 0.001 u^2) with the angle normalised to [-pi, pi); speed
// clipped to 8; dt 0.05, g 10, m 1, l 1; 200 steps, no terminal state.
class Pendulum final : public VecEnv {
 public:
  Pendulum(int n, std::uint64_t seed) : VecEnv(env_spec("Pendulum-v1"), n, seed, 2) {}

 protected:
  void reset_one(double* s) override {
    s[0] = uniform(-kPi, kPi);
    s[1] = uniform(-1.0, 1.0);
  }
  double dynamics(double* s, const float* a, bool& terminal) const override {
    const double max_speed = 8, max_torque = 2, dt = 0.05, g = 10.0, m = 1.0, l = 1.0;
    const double th = s[0], thdot = s[1];
    const double u = std::clamp(static_cast<double>(a[0]), -max_torque, max_torque);
    const double an = angle_normalize(th);
    const double costs = an * an + 0.1 * thdot * thdot + 0.001 * u * u;
    double newthdot = thdot + (3 * g / (2 * l) * std::sin(th) + 3.0 / (m * l * l) * u) * dt;
    newthdot = std::clamp(newthdot, -max_speed, max_speed);
    s[0] = th + newthdot * dt;
    s[1] = newthdot;
    terminal = false;
    return -costs;
  }
  void observe(const double* s, float* o) const override {
    o[0] = static_cast<float>(std::cos(s[0]));
    o[1] = static_cast<float>(std::sin(s[0]));
    o[2] = static_cast<float>(s[1]);
  }

 private:
  // Python's ((x + pi) % (2 pi)) - pi: the modulo takes the divisor's sign.
  static double angle_normalize(double x) {
    double r = std::fmod(x + kPi, 2 * kPi);
    if (r < 0) r += 2 * kPi;
    return r - kPi;
  }
};

}  // namespace

std::vector<std::string> env_names() { return {"CartPole-v1", "Acrobot-v1", "Pendulum-v1"}; }

EnvSpec env_spec(const std::string& name) {
  EnvSpec s;
  s.name = name;
  if (name == "CartPole-v1") {
    s.obs_dim = 4, s.n_actions = 2, s.max_steps = 500, s.worst_return = 0;
    s.has_threshold = true, s.threshold = 475;
  } else if (name == "Acrobot-v1") {
    s.obs_dim = 6, s.n_actions = 3, s.max_steps = 500, s.worst_return = -500;
  } else if (name == "Pendulum-v1") {
    s.obs_dim = 3, s.n_actions = 0, s.act_dim = 1, s.act_low = -2, s.act_high = 2, s.max_steps = 200;
    // Every step costs at most pi^2 + 0.1 * 8^2 + 0.001 * 2^2.
    s.worst_return = -(kPi * kPi + 0.1 * 64 + 0.001 * 4) * 200;
  } else {
    std::string known;
    for (const auto& n : env_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown environment '" + name + "' (known: " + known + ")");
  }
  return s;
}

std::unique_ptr<VecEnv> make_env(const std::string& name, int n, std::uint64_t seed) {
  std::unique_ptr<VecEnv> e;
  if (name == "CartPole-v1") e = std::make_unique<CartPole>(n, seed);
  else if (name == "Acrobot-v1") e = std::make_unique<Acrobot>(n, seed);
  else if (name == "Pendulum-v1") e = std::make_unique<Pendulum>(n, seed);
  else env_spec(name);  // throws, naming the known ones
  e->reset_all();
  return e;
}

}  // namespace pbt::rl
