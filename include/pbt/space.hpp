#pragma once
// The search space: one entry per hyperparameter, each with bounds and a prior.
// Every value the engine produces (sampled, perturbed, resampled) stays inside its bounds.
#include <string>
#include <vector>

#include "pbt/hyperparams.hpp"
#include "pbt/rng.hpp"

namespace pbt {

struct Param {
  enum class Kind { Float, Int, Categorical };
  std::string name;
  Kind kind = Kind::Float;
  double low = 0, high = 1;          // Float and Int bounds (inclusive)
  bool log = false;                  // log scale: prior and perturbation in log space
  std::vector<std::string> choices;  // Categorical
  bool ordered = false;              // Categorical: neighbours are meaningful

  // Draw from the prior: uniform on [low, high] (log-uniform when log), uniform over choices.
  Value sample(Rng& rng) const;
  // Bring a value back inside the bounds (rounding integers).
  Value clip(const Value& v) const;
  bool contains(const Value& v) const;
  // Throws ConfigError naming `where` if the definition is unusable.
  void validate(const std::string& where) const;
};

class SearchSpace {
 public:
  SearchSpace() = default;
  explicit SearchSpace(std::vector<Param> params) : params_(std::move(params)) {}

  const std::vector<Param>& params() const { return params_; }
  const Param* find(const std::string& name) const;
  Hyperparams sample(Rng& rng) const;
  // Checks that h names exactly this space's parameters, each of the right kind and in bounds.
  void check(const Hyperparams& h, const std::string& where) const;
  // The same check for an h from outside the engine (what a trainable accepted): "" when h
  // fits, else why not, naming the first hyperparameter at fault and its value ("'batch' =
  // 1024 is outside its bounds [16, 512]"). An int must be an integer, a float any number.
  std::string problem(const Hyperparams& h) const;

 private:
  std::vector<Param> params_;
};

}  // namespace pbt
