#pragma once
// The deep-RL trainable (kind "rl"): an advantage actor-critic agent (A2C) in LibTorch on
// N copies of a classic-control environment. One engine step = `frames_per_step`
// environment frames (summed over the copies), so members with different unroll lengths
// get the same budget of experience. eval = the mean of the last `window` episodic
// returns (the returns are the t-test's samples); every eval also scores the
// policy on `fresh_episodes` new episodes drawn from a stream training never uses, and
// reports it in Score.metrics (fresh_return; fresh_return_greedy for the greedy policy),
// so the best member's final figure is one that selection never saw.
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>

#include "pbt/trainable.hpp"
#include "trainables/torch/common.hpp"
#include "trainables/torch/rl/envs.hpp"

namespace pbt::rl {

struct A2cOptions {
  std::string env;      // "CartPole-v1", "Acrobot-v1", "Pendulum-v1"
  int envs = 16;        // environment copies stepped together
  int hidden = 64;      // units per hidden layer
  int layers = 2;       // hidden layers
  bool shared = false;  // one torso for policy and value (else two networks)
  std::int64_t frames_per_step = 1000;
  double max_grad_norm = 0.5;  // gradient clipping (global norm); 0 disables
  double reward_scale = 1.0;   // rewards are multiplied by this for learning only
  int window = 10;             // episodic returns averaged by eval
  int fresh_episodes = 100;    // greedy episodes scored at every eval (0: none)
  // Defaults of the hyperparameters the [space] does not set.
  double lr = 1e-3;
  double entropy_cost = 0.01;
  int unroll_length = 8;
  double gamma = 0.99;
  double value_cost = 0.5;
  torch::Device device = torch::kCPU;
};

// Reads and checks [trainable] (names the field on error; refuses unknown keys).
A2cOptions read_a2c_options(const nlohmann::json& j, const std::string& where);

struct ActorCriticImpl : torch::nn::Module {
  ActorCriticImpl(int obs_dim, int n_out, bool continuous, int hidden, int layers, bool shared);
  torch::Tensor policy(const torch::Tensor& x);  // logits, or the Gaussian's mean
  torch::Tensor value(const torch::Tensor& x);   // [B]
  torch::nn::Sequential pi_body{nullptr}, v_body{nullptr};
  torch::nn::Linear pi_head{nullptr}, v_head{nullptr};
  torch::Tensor log_std;  // continuous actions: state-independent log standard deviation
  bool continuous, shared;
};
TORCH_MODULE(ActorCritic);

class A2cTrainable final : public Trainable {
 public:
  A2cTrainable(const A2cOptions& o, int member, std::uint64_t seed);

  void apply(const Hyperparams& h) override;
  void step(std::int64_t n) override;
  Score eval() override;
  void save(CheckpointWriter& out) const override;
  void load(CheckpointReader& in) override;
  // Another member's checkpoint: this member's own resets, actions and LibTorch stream.
  void copied(const Copied& from) override;

  // For tests and the bench.
  double last_loss() const { return last_loss_; }
  double learning_rate() const { return torchx::learning_rate(*opt_); }
  int unroll_length() const { return unroll_; }
  double entropy_cost() const { return entropy_cost_; }
  std::int64_t frames() const { return frames_; }
  bool diverged() const { return diverged_; }
  // Mean return over `episodes` new episodes from stream `stream`, acting with the policy
  // as trained (sampled actions, drawn from that stream too), or greedily (the most likely
  // action, or the Gaussian's mean).
  double fresh_return(int episodes, std::uint64_t stream, bool greedy = false);
  // Makes the next update diverge (a test of the divergence path).
  void poison_for_test();

 private:
  void update();

  A2cOptions o_;
  EnvSpec spec_;
  int member_;
  std::uint64_t seed_;
  std::unique_ptr<VecEnv> env_;
  ActorCritic net_{nullptr};
  std::unique_ptr<torch::optim::Adam> opt_;
  torchx::MemberRng torch_rng_;
  std::mt19937_64 rng_;  // action sampling
  std::deque<double> returns_;
  std::int64_t frames_ = 0, updates_ = 0, episodes_ = 0, evals_ = 0;
  std::int64_t debt_ = 0;  // frames still owed to the engine's steps (negative: ahead)
  double lr_, entropy_cost_, gamma_, value_cost_;
  int unroll_;
  double last_loss_ = 0;
  bool diverged_ = false;
};

std::unique_ptr<Trainable> make_a2c_trainable(const TrainableContext& ctx);
// What apply() checks, without an agent: lets a config's [space] be refused up front.
void check_hyperparams(const Hyperparams& h);

}  // namespace pbt::rl
