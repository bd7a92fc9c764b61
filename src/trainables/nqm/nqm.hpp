#pragma once
// The noisy quadratic model (NQM; Zhang et al. 2019, "Which algorithmic choices matter at
// which batch sizes?"), the setting of the short-horizon bias (Wu et al. 2018): SGD on
// L(θ) = ½ Σ h_i θ_i² whose curvatures h_i span orders of magnitude, with gradient noise of
// variance noise · h_i / batch. A small learning rate lowers the noise floor at once but
// crawls along the flat directions, so a selection over short intervals lowers lr too early
// (docs/nqm.md). Hyperparameters: `lr` (and optionally `momentum`, heavy ball).
#include <cstdint>
#include <string>
#include <vector>

#include "pbt/rng.hpp"
#include "pbt/trainable.hpp"

namespace pbt {

struct NqmOptions {
  std::int64_t dim = 100;
  std::string spectrum = "power";  // power: h_i = h_max · i^-power; log: log-spaced h_max .. h_min
  double power = 1.0;
  double h_max = 1.0;
  double h_min = 1e-3;
  double noise = 1.0;  // gradient noise variance per direction: noise · h_i / batch
  double batch = 10;
  double eval_batch = 1000;  // the minibatch eval's score is estimated on
  double init = 1.0;         // θ_i at step 0, every direction, every member
};

NqmOptions read_nqm_options(const nlohmann::json& options, const std::string& where);
// The curvatures h_1 >= ... >= h_dim the options describe.
std::vector<double> nqm_curvatures(const NqmOptions& o);

class NqmTrainable : public Trainable {
 public:
  NqmTrainable(const NqmOptions& o, std::uint64_t seed);
  void apply(const Hyperparams& h) override;
  void step(std::int64_t n) override;
  Score eval() override;
  void save(CheckpointWriter& out) const override;
  void load(CheckpointReader& in) override;
  void copied(const Copied& from) override { rng_ = Rng(from.seed); }

  // ½ Σ h_i θ_i²: the exact loss of the current θ (the `true_loss` metric).
  double true_loss() const;
  const std::vector<double>& theta() const { return theta_; }

 private:
  NqmOptions o_;
  std::vector<double> h_;   // curvatures
  std::vector<double> sd_;  // gradient noise standard deviation per direction
  std::vector<double> theta_;
  std::vector<double> velocity_;
  double lr_ = 0, momentum_ = 0;
  Rng rng_;
};

void register_nqm_trainable();

}  // namespace pbt
