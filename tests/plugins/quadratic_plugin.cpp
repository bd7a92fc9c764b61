// A tiny trainable plugin, the example the e2e tests load through `pbt run`: kind "quadratic",
// gradient ascent on Q(x) = -(x - target)^2 with the learning rate `lr` from [space]. No
// LibTorch; like an out-of-tree plugin it sees only pbt's public headers.
#include <cmath>

#include "pbt/error.hpp"
#include "pbt/plugin.hpp"
#include "pbt/trainable.hpp"

namespace {

class Quadratic : public pbt::Trainable {
 public:
  explicit Quadratic(const pbt::TrainableContext& ctx)
      : target_(ctx.options.value("target", 3.0)), x_(ctx.options.value("start", 0.0)) {}
  void apply(const pbt::Hyperparams& h) override { lr_ = pbt::as_double(h.at("lr")); }
  void step(std::int64_t n) override {
    for (std::int64_t i = 0; i < n; ++i) x_ += lr_ * 2 * (target_ - x_);  // dQ/dx
  }
  pbt::Score eval() override { return {-(x_ - target_) * (x_ - target_), {}, {}}; }
  void save(pbt::CheckpointWriter& out) const override { out.write(x_); }
  void load(pbt::CheckpointReader& in) override { x_ = in.read<double>(); }

 private:
  double target_, x_, lr_ = 0;
};

void check_options(const nlohmann::json& options, const std::string& where) {
  for (const auto& [key, v] : options.items()) {
    if (key != "target" && key != "start") throw pbt::ConfigError(where + "." + key, "unknown key");
    if (!v.is_number()) throw pbt::ConfigError(where + "." + key, "expected a number");
  }
}

void register_quadratic() {
  pbt::register_trainable(
      "quadratic", [](const pbt::TrainableContext& ctx) { return std::make_unique<Quadratic>(ctx); }, check_options);
  pbt::register_hyperparams_check("quadratic", [](const pbt::Hyperparams& h) {
    const auto it = h.find("lr");
    if (it == h.end()) throw pbt::ConfigError("lr", "missing: the quadratic trainable needs a learning rate");
    if (!(pbt::as_double(it->second) > 0 && pbt::as_double(it->second) < 0.5))
      throw pbt::ConfigError("lr", "must be in (0, 0.5)");
  });
}

}  // namespace

PBT_PLUGIN(register_quadratic)
