#pragma once
// Classic-control environments in plain C++ (no LibTorch), with the dynamics, limits,
// rewards and termination of Gym's CartPole-v1, Acrobot-v1 and Pendulum-v1. Vectorised:
// one object steps N independent copies together; a copy whose episode ends is reset at
// once (the observation then is the new episode's first one; the last one of the ended
// episode is kept in final_obs for bootstrapping a time-limit truncation). One
// std::mt19937_64 draws every reset; its state is part of save/load.
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "pbt/checkpoint_io.hpp"

namespace pbt::rl {

struct EnvSpec {
  std::string name;
  int obs_dim = 0;
  int n_actions = 0;                 // discrete action count; 0 for continuous actions
  int act_dim = 0;                   // continuous action size (0 when discrete)
  double act_low = 0, act_high = 0;  // continuous action bounds (actions are clipped)
  int max_steps = 0;                 // time limit (truncation)
  double worst_return = 0;           // a lower bound of an episode's return (scores a diverged agent)
  bool has_threshold = false;
  double threshold = 0;  // Gym's "solved" return, where there is one (CartPole: 475)
};

// Names accepted by make_env, for messages.
std::vector<std::string> env_names();
// The spec of a named environment; throws std::invalid_argument for an unknown name.
EnvSpec env_spec(const std::string& name);

class VecEnv {
 public:
  VecEnv(EnvSpec spec, int n, std::uint64_t seed, int state_dim);
  virtual ~VecEnv() = default;

  const EnvSpec& spec() const { return spec_; }
  int size() const { return n_; }
  // n * obs_dim observations (row-major), the current one of every copy.
  const std::vector<float>& obs() const { return obs_; }

  // Steps every copy. Discrete: `actions` holds n action indices (as floats);
  // continuous: n * act_dim values (clipped to the bounds).
  void step(const float* actions);

  // What the last step produced, per copy.
  const std::vector<float>& reward() const { return reward_; }
  const std::vector<std::uint8_t>& terminated() const { return terminated_; }  // a terminal state
  const std::vector<std::uint8_t>& truncated() const { return truncated_; }    // the time limit
  const std::vector<float>& final_obs() const { return final_obs_; }           // valid where an episode ended
  // Returns of the episodes that ended in the last step (in copy order).
  const std::vector<double>& finished_returns() const { return finished_; }

  // Resets every copy (a new episode for each).
  void reset_all();
  // A new random stream for future resets (the running episodes go on).
  void reseed(std::uint64_t seed) { rng_.seed(seed); }

  // The raw state of copy i (for tests), and setting it (observation recomputed).
  std::vector<double> state(int i) const;
  void set_state(int i, const std::vector<double>& s);

  void save(CheckpointWriter& out) const;
  void load(CheckpointReader& in);

 protected:
  virtual void reset_one(double* s) = 0;
  // Advances state s by action a (a points at the copy's action); returns the reward and
  // sets terminal.
  virtual double dynamics(double* s, const float* a, bool& terminal) const = 0;
  virtual void observe(const double* s, float* o) const = 0;
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng_); }

 private:
  EnvSpec spec_;
  int n_;
  int state_dim_;
  std::mt19937_64 rng_;
  std::vector<double> state_;  // n * state_dim
  std::vector<int> t_;         // steps into the episode
  std::vector<double> ret_;    // return so far
  std::vector<float> obs_, reward_, final_obs_;
  std::vector<std::uint8_t> terminated_, truncated_;
  std::vector<double> finished_;
  bool started_ = false;

  void reset_copy(int i);
};

// N copies of a named environment ("CartPole-v1", "Acrobot-v1", "Pendulum-v1"), reset.
// Throws std::invalid_argument for an unknown name.
std::unique_ptr<VecEnv> make_env(const std::string& name, int n, std::uint64_t seed);

}  // namespace pbt::rl
