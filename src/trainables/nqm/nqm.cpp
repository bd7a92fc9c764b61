#include "trainables/nqm/nqm.hpp"

#include <cmath>
#include <sstream>

#include "pbt/options.hpp"

namespace pbt {

namespace {
constexpr std::uint32_t kNqmMagic = 0x314d514e;  // "NQM1"

struct NqmH {
  double lr;
  double momentum;
};

// lr (required, > 0) and momentum (optional, in [0, 1)); anything else is refused, so a typo
// in [space] is not trained on silently. Also the up-front check of the config's space.
NqmH read_h(const Hyperparams& h) {
  auto number = [&](const std::string& name) {
    const auto& v = h.at(name);
    if (std::holds_alternative<std::string>(v))
      throw ConfigError("trainable", "the nqm trainable's '" + name + "' must be a number, not categorical");
    return as_double(v);
  };
  NqmH r{0, 0};
  if (!h.count("lr")) throw ConfigError("trainable", "the nqm trainable needs hyperparameter 'lr' in [space]");
  r.lr = number("lr");
  if (!(r.lr > 0) || !std::isfinite(r.lr))
    throw ConfigError("trainable", "the nqm trainable's 'lr' must be > 0, got " + Options::number_text(r.lr));
  if (h.count("momentum")) {
    r.momentum = number("momentum");
    if (!(r.momentum >= 0 && r.momentum < 1))
      throw ConfigError("trainable",
                        "the nqm trainable's 'momentum' must be in [0, 1), got " + Options::number_text(r.momentum));
  }
  for (const auto& [name, v] : h)
    if (name != "lr" && name != "momentum")
      throw ConfigError("trainable", "the nqm trainable takes hyperparameters 'lr' and 'momentum'; '" + name +
                                         "' is not one of them");
  return r;
}
}  // namespace

NqmOptions read_nqm_options(const nlohmann::json& j, const std::string& where) {
  Options o(j, where);
  NqmOptions n;
  n.dim = o.integer_in("dim", n.dim, 1, 1000000);
  n.spectrum = o.string("spectrum", n.spectrum);
  if (n.spectrum != "power" && n.spectrum != "log")
    throw ConfigError(o.path("spectrum"), "must be \"power\" or \"log\", got \"" + n.spectrum + "\"");
  n.power = o.number_in("power", n.power, 0.0, 10.0);
  n.h_max = o.number("h_max", n.h_max);
  if (!(n.h_max > 0)) throw ConfigError(o.path("h_max"), "must be > 0, got " + Options::number_text(n.h_max));
  n.h_min = o.number("h_min", n.h_min);
  if (!(n.h_min > 0 && n.h_min <= n.h_max))
    throw ConfigError(o.path("h_min"), "must be > 0 and <= h_max, got " + Options::number_text(n.h_min));
  n.noise = o.number("noise", n.noise);
  if (!(n.noise >= 0)) throw ConfigError(o.path("noise"), "must be >= 0, got " + Options::number_text(n.noise));
  n.batch = o.number("batch", n.batch);
  if (!(n.batch > 0)) throw ConfigError(o.path("batch"), "must be > 0, got " + Options::number_text(n.batch));
  n.eval_batch = o.number("eval_batch", n.eval_batch);
  if (!(n.eval_batch > 0))
    throw ConfigError(o.path("eval_batch"), "must be > 0, got " + Options::number_text(n.eval_batch));
  n.init = o.number("init", n.init);
  o.finish();
  return n;
}

std::vector<double> nqm_curvatures(const NqmOptions& o) {
  std::vector<double> h(static_cast<std::size_t>(o.dim));
  for (std::size_t i = 0; i < h.size(); ++i) {
    if (o.spectrum == "power") {
      h[i] = o.h_max * std::pow(static_cast<double>(i + 1), -o.power);
    } else {
      double f = h.size() == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(h.size() - 1);
      h[i] = o.h_max * std::pow(o.h_min / o.h_max, f);
    }
  }
  return h;
}

NqmTrainable::NqmTrainable(const NqmOptions& o, std::uint64_t seed)
    : o_(o), h_(nqm_curvatures(o)), theta_(h_.size(), o.init), velocity_(h_.size(), 0.0), rng_(seed) {
  sd_.resize(h_.size());
  for (std::size_t i = 0; i < h_.size(); ++i) sd_[i] = std::sqrt(o_.noise * h_[i] / o_.batch);
}

void NqmTrainable::apply(const Hyperparams& h) {
  auto r = read_h(h);
  lr_ = r.lr;
  momentum_ = r.momentum;
}

void NqmTrainable::step(std::int64_t n) {
  // g_i = h_i θ_i + noise: the gradient of a minibatch (see eval for the loss it comes from).
  for (std::int64_t s = 0; s < n; ++s)
    for (std::size_t i = 0; i < theta_.size(); ++i) {
      double g = h_[i] * theta_[i] + sd_[i] * standard_normal(rng_);
      velocity_[i] = momentum_ * velocity_[i] + g;
      theta_[i] -= lr_ * velocity_[i];
    }
}

double NqmTrainable::true_loss() const {
  double l = 0;
  for (std::size_t i = 0; i < theta_.size(); ++i) l += 0.5 * h_[i] * theta_[i] * theta_[i];
  return l;
}

Score NqmTrainable::eval() {
  // A fresh minibatch of eval_batch examples: L_B(θ) = ½ Σ h_i (θ_i − ε_i)², ε_i ~ N(0, noise /
  // (h_i · eval_batch)), whose gradient has exactly the training noise at batch = eval_batch.
  // E[L_B] = L(θ) + ½ · dim · noise / eval_batch: that constant is taken off, so the score is
  // an unbiased estimate of -L(θ).
  double lb = 0;
  for (std::size_t i = 0; i < theta_.size(); ++i) {
    double eps = std::sqrt(o_.noise / (h_[i] * o_.eval_batch)) * standard_normal(rng_);
    double d = theta_[i] - eps;
    lb += 0.5 * h_[i] * d * d;
  }
  lb -= 0.5 * static_cast<double>(theta_.size()) * o_.noise / o_.eval_batch;
  Score s;
  s.value = -lb;
  s.metrics = {{"true_loss", true_loss()}};
  return s;
}

void NqmTrainable::save(CheckpointWriter& out) const {
  out.write(kNqmMagic);
  out.write_vector(theta_);
  out.write_vector(velocity_);
  std::ostringstream rng;
  rng << rng_;  // the stream resumes exactly after a load (a copy gets its own from copied())
  out.write_string(rng.str());
}

void NqmTrainable::load(CheckpointReader& in) {
  if (in.read<std::uint32_t>() != kNqmMagic) throw CheckpointError("not an nqm checkpoint");
  auto theta = in.read_vector<double>();
  auto velocity = in.read_vector<double>();
  if (theta.size() != h_.size() || velocity.size() != h_.size())
    throw CheckpointError("nqm checkpoint of dimension " + std::to_string(theta.size()) + ", the options say " +
                          std::to_string(h_.size()));
  std::istringstream rng(in.read_string());
  Rng r;
  rng >> r;
  if (!rng) throw CheckpointError("nqm checkpoint: unreadable random stream");
  theta_ = std::move(theta);
  velocity_ = std::move(velocity);
  rng_ = r;
}

void register_nqm_trainable() {
  register_trainable(
      "nqm",
      [](const TrainableContext& ctx) {
        return std::make_unique<NqmTrainable>(read_nqm_options(ctx.options, "trainable"), ctx.seed);
      },
      [](const nlohmann::json& j, const std::string& where) { read_nqm_options(j, where); });
  register_hyperparams_check("nqm", [](const Hyperparams& h) { read_h(h); });
}

}  // namespace pbt
