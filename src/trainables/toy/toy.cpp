#include "trainables/toy/toy.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "pbt/options.hpp"

namespace pbt {

namespace {
constexpr std::uint32_t kToyMagic = 0x31594f54;  // "TOY1": refuse someone else's bytes

struct ToyOptions {
  double eta;
  std::array<double, 2> theta;
  double sleep_ms;
  std::string pause_file;
  std::int64_t pause_after;
};

// Toy steps this process has trained, over all its members: `pause_after` counts these, so a
// worker stops at a known point in steps whichever members it leased.
std::atomic<std::int64_t> process_steps{0};

ToyOptions read_options(const nlohmann::json& j, const std::string& where) {
  Options o(j, where);
  ToyOptions t;
  t.eta = o.number("eta", 0.05);
  if (!(t.eta > 0) || !std::isfinite(t.eta)) throw ConfigError(o.path("eta"), "must be a positive number");
  auto theta = o.numbers("theta", {0.9, 0.9});
  if (theta.size() != 2) throw ConfigError(o.path("theta"), "must have exactly 2 numbers");
  t.theta = {theta[0], theta[1]};
  // Pretend each step costs this long: lets a demo or a fault-tolerance test watch a
  // run that would otherwise finish in milliseconds.
  t.sleep_ms = o.number("sleep_ms", 0.0);
  if (!(t.sleep_ms >= 0 && t.sleep_ms <= 60000)) throw ConfigError(o.path("sleep_ms"), "must be in [0, 60000]");
  // Once this process has trained `pause_after` steps, each further step waits while
  // `pause_file` exists: a fault-tolerance test holds its workers mid-run (members leased,
  // checkpoints published) for as long as it needs, whatever the machine's speed.
  t.pause_file = o.string("pause_file", "");
  t.pause_after = o.integer("pause_after", 0);
  if (t.pause_after < 0) throw ConfigError(o.path("pause_after"), "must be >= 0");
  o.finish();
  return t;
}
// h0 and h1 as numbers; also the up-front check of the space, so a config without one is
// refused when it is read rather than by every member at run time.
std::array<double, 2> read_h(const Hyperparams& h) {
  auto get = [&](const char* name) {
    auto it = h.find(name);
    if (it == h.end())
      throw ConfigError("trainable", std::string("the toy problem needs hyperparameters h0 and h1 in [space]; '") +
                                         name + "' is missing");
    if (std::holds_alternative<std::string>(it->second))
      throw ConfigError("trainable", std::string("the toy problem's '") + name + "' must be a number, not categorical");
    return as_double(it->second);
  };
  return {get("h0"), get("h1")};
}
}  // namespace

void ToyTrainable::apply(const Hyperparams& h) { h_ = read_h(h); }

void ToyTrainable::step(std::int64_t n) {
  if (!pause_file_.empty() && process_steps.load() >= pause_after_)
    while (std::filesystem::exists(pause_file_)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  process_steps += n;
  if (sleep_ms_ > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(sleep_ms_ * n));
  for (std::int64_t i = 0; i < n; ++i)
    for (int k = 0; k < 2; ++k) theta_[k] += eta_ * (-2.0 * h_[k] * theta_[k]);  // ascent on Q̂
}

Score ToyTrainable::eval() {
  Score s;
  s.value = 1.2 - (theta_[0] * theta_[0] + theta_[1] * theta_[1]);
  s.metrics = {{"theta0", theta_[0]}, {"theta1", theta_[1]}};
  return s;
}

void ToyTrainable::save(CheckpointWriter& out) const {
  out.write(kToyMagic);
  out.write(theta_);
}

void ToyTrainable::load(CheckpointReader& in) {
  if (in.read<std::uint32_t>() != kToyMagic) throw CheckpointError("not a toy checkpoint");
  theta_ = in.read<std::array<double, 2>>();
}

void register_toy_trainable() {
  register_trainable(
      "toy",
      [](const TrainableContext& ctx) {
        auto o = read_options(ctx.options, "trainable");
        auto t = std::make_unique<ToyTrainable>(o.eta, o.theta, o.sleep_ms);
        t->pause_when(o.pause_file, o.pause_after);
        return t;
      },
      [](const nlohmann::json& j, const std::string& where) { read_options(j, where); });
  register_hyperparams_check("toy", [](const Hyperparams& h) { read_h(h); });
}

}  // namespace pbt
