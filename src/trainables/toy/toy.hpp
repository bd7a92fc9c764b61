#pragma once
// The paper's toy problem (Figure 2): maximise Q(θ) = 1.2 − (θ₀² + θ₁²) while training
// by gradient ascent on the surrogate Q̂(θ|h) = 1.2 − (h₀θ₀² + h₁θ₁²).
// eval returns the true Q; the hyperparameters are h0 and h1.
#include <array>
#include <string>

#include "pbt/trainable.hpp"

namespace pbt {

class ToyTrainable : public Trainable {
 public:
  ToyTrainable(double eta, std::array<double, 2> theta, double sleep_ms = 0)
      : eta_(eta), sleep_ms_(sleep_ms), theta_(theta) {}
  void apply(const Hyperparams& h) override;
  void step(std::int64_t n) override;
  Score eval() override;
  void save(CheckpointWriter& out) const override;
  void load(CheckpointReader& in) override;

  const std::array<double, 2>& theta() const { return theta_; }
  // See the `pause_file` option in toy.cpp.
  void pause_when(std::string file, std::int64_t after_process_steps) {
    pause_file_ = std::move(file);
    pause_after_ = after_process_steps;
  }

 private:
  double eta_;
  double sleep_ms_;
  std::array<double, 2> theta_;
  std::array<double, 2> h_{0, 0};
  std::string pause_file_;
  std::int64_t pause_after_ = 0;
};

void register_toy_trainable();

}  // namespace pbt
