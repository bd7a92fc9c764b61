#include "trainables/torch/gan/gan.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <map>
#include <mutex>

#include "pbt/options.hpp"
#include "trainables/torch/common.hpp"

namespace pbt::gan {

namespace {

constexpr std::uint32_t kGanMagic = 0x314e4147;        // "GAN1": refuse someone else's bytes
constexpr std::uint64_t kEvalSeed = 0x6576616c;        // the same generator inputs for every eval
constexpr std::uint64_t kClassifierSeed = 0x636c6173;  // the classifier does not depend on the member

torch::nn::Sequential mlp(int in, int hidden, int layers, int out, bool leaky) {
  torch::nn::Sequential s;
  int width = in;
  for (int i = 0; i < layers; ++i) {
    s->push_back(torch::nn::Linear(width, hidden));
    if (leaky) s->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
    else s->push_back(torch::nn::ReLU());
    width = hidden;
  }
  s->push_back(torch::nn::Linear(width, out));
  return s;
}

torch::Tensor to_tensor(const std::vector<Point>& x) {
  auto t = torch::empty({static_cast<long>(x.size()), 2}, torch::kFloat32);
  auto a = t.accessor<float, 2>();
  for (std::size_t i = 0; i < x.size(); ++i)
    a[i][0] = static_cast<float>(x[i][0]), a[i][1] = static_cast<float>(x[i][1]);
  return t;
}

std::vector<Point> to_points(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  auto a = c.accessor<double, 2>();
  std::vector<Point> out(c.size(0));
  for (long i = 0; i < c.size(0); ++i) out[i] = {a[i][0], a[i][1]};
  return out;
}

// The selection classifier: an MLP trained on real samples labelled with their component,
// as CIFAR-IS's network was trained on CIFAR-10. Its IS is the selection score; the
// reported IS uses the true posterior instead. Inputs are scaled by the mixture's std, so
// its modes are unit-sized.
class Classifier {
 public:
  // background: one more class, "not data", trained on points drawn uniformly over the data's
  // box (the means' bounding box widened by half its size on each side). Without it a
  // classifier trained on real samples only is confident everywhere, so samples spread
  // evenly over the plane get a high IS. With it, p(y|x) over the modes spreads the "not
  // data" probability evenly over them: the classifier is unsure about such samples, as an
  // image classifier is about images unlike its data, and the IS rises only with samples
  // on the modes.
  Classifier(const Mixture& m, bool background) : scale_(1.0 / m.std), background_(background) {
    torchx::MemberRng rng(kClassifierSeed);
    auto scope = rng.enter();  // before the net exists: its initial weights come from this stream
    const int classes = m.modes() + (background ? 1 : 0);
    net_ = mlp(2, 64, 2, classes, false);
    std::mt19937_64 gen(kClassifierSeed);
    {
      // Scaled inputs span hundreds of units: the first layer starts as wide as they are.
      torch::NoGradGuard ng;
      net_->named_parameters()["0.weight"].mul_(m.std);
    }
    const Box b = data_box(m);
    std::vector<std::uniform_real_distribution<double>> box;
    for (int c = 0; c < 2; ++c) box.emplace_back(b.lo[c], b.hi[c]);
    torch::optim::Adam opt(net_->parameters(), torch::optim::AdamOptions(3e-3));
    const int n = 256, iters = background ? 1500 : 500;
    for (int it = 0; it < iters; ++it) {
      std::vector<int> labels;
      auto pts = sample(m, n, gen, &labels);
      if (background)
        for (int i = 0; i < n; ++i) pts.push_back({box[0](gen), box[1](gen)}), labels.push_back(m.modes());
      auto x = to_tensor(pts);
      auto y = torch::tensor(std::vector<int64_t>(labels.begin(), labels.end()), torch::kInt64);
      auto loss = torch::nll_loss(torch::log_softmax(forward(x), 1), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    net_->eval();
  }
  torch::Tensor log_posterior(const torch::Tensor& x) {
    torch::NoGradGuard ng;
    auto lp = torch::log_softmax(forward(x.to(torch::kCPU, torch::kFloat32)), 1);
    if (!background_) return lp;
    const long k = lp.size(1) - 1;
    return torch::logaddexp(lp.narrow(1, 0, k), lp.narrow(1, k, 1) - std::log(static_cast<double>(k)));
  }

 private:
  torch::Tensor forward(const torch::Tensor& x) { return net_->forward(x * scale_); }
  torch::nn::Sequential net_{nullptr};
  double scale_;
  bool background_;
};

Classifier& classifier_for(const Mixture& m, bool background) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Classifier>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& c = cache[m.key() + (background ? "+background" : "")];
  if (!c) c = std::make_unique<Classifier>(m, background);
  return *c;
}

std::vector<std::vector<double>> rows(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  auto a = c.accessor<double, 2>();
  std::vector<std::vector<double>> out(c.size(0), std::vector<double>(c.size(1)));
  for (long i = 0; i < c.size(0); ++i)
    for (long k = 0; k < c.size(1); ++k) out[i][k] = a[i][k];
  return out;
}

class GanTrainable : public Trainable {
 public:
  GanTrainable(const GanOptions& o, std::uint64_t seed)
      : o_(o), device_(o.device), rng_(seed), g_(nullptr), d_(nullptr), means_(to_tensor(o.mixture.means).to(device_)) {
    torchx::use_one_thread();
    classifier_ = &classifier_for(o_.mixture, o_.background_class);  // trained before the member's stream is entered
    auto scope = rng_.enter();  // the initial weights come from the member's stream
    g_ = mlp(o_.latent, o_.hidden, o_.layers, 2, false);
    d_ = mlp(2, o_.hidden, o_.layers, 1, true);
    g_->to(device_);
    d_->to(device_);
    const auto betas = std::make_tuple(o_.beta1, o_.beta2);
    g_opt_ = std::make_unique<torch::optim::Adam>(g_->parameters(), torch::optim::AdamOptions(o_.lr_g).betas(betas));
    d_opt_ = std::make_unique<torch::optim::Adam>(d_->parameters(), torch::optim::AdamOptions(o_.lr_d).betas(betas));
    lr_g_ = o_.lr_g;
    lr_d_ = o_.lr_d;
  }

  void apply(const Hyperparams& h) override {
    lr_g_ = read_lr(h, "lr_g", o_.lr_g);
    lr_d_ = read_lr(h, "lr_d", o_.lr_d);
    torchx::set_learning_rate(*g_opt_, lr_g_);
    torchx::set_learning_rate(*d_opt_, lr_d_);
  }

  void step(std::int64_t n) override {
    auto scope = rng_.enter();
    g_->train();
    d_->train();
    for (std::int64_t i = 0; i < n && !diverged_; ++i) {
      double dl = 0;
      for (int k = 0; k < o_.d_steps; ++k) {
        torch::Tensor fake;
        {
          torch::NoGradGuard ng;
          fake = g_->forward(noise(o_.batch));
        }
        auto logits = d_->forward(torch::cat({real(o_.batch), fake}, 0));
        auto lr = logits.narrow(0, 0, o_.batch), lf = logits.narrow(0, o_.batch, o_.batch);
        torch::Tensor loss;
        if (o_.loss == "hinge") loss = torch::relu(1 - lr).mean() + torch::relu(1 + lf).mean();
        else loss = torch::softplus(-lr).mean() + torch::softplus(lf).mean();  // -log D(x) - log(1 - D(G(z)))
        d_opt_->zero_grad();
        loss.backward();
        d_opt_->step();
        dl = loss.item<double>();
      }
      auto lf = d_->forward(g_->forward(noise(o_.batch)));
      torch::Tensor loss;
      if (o_.loss == "nonsaturating") loss = torch::softplus(-lf).mean();  // -log D(G(z))
      else if (o_.loss == "minimax") loss = -torch::softplus(lf).mean();   // log(1 - D(G(z)))
      else loss = -lf.mean();                                              // hinge
      g_opt_->zero_grad();
      loss.backward();
      g_opt_->step();
      const double gl = loss.item<double>();
      // A diverged GAN stops training and is scored worst at its next eval; never a crash.
      if (!std::isfinite(dl) || !std::isfinite(gl)) diverged_ = true;
      d_loss_ = dl;
      g_loss_ = gl;
      steps_++;
    }
  }

  Score eval() override {
    Score s;
    s.metrics = {{"steps", steps_}, {"lr_g", lr_g_}, {"lr_d", lr_d_}};
    // Losses only when finite: JSON has no NaN (it would read back as null).
    if (std::isfinite(d_loss_)) s.metrics["d_loss"] = d_loss_;
    if (std::isfinite(g_loss_)) s.metrics["g_loss"] = g_loss_;
    if (!diverged_) {
      torch::NoGradGuard ng;
      g_->eval();
      auto gen = at::make_generator<at::CPUGeneratorImpl>(kEvalSeed);
      auto z = torch::randn({o_.eval_samples, o_.latent}, gen, torch::kFloat32).to(device_);
      auto x = g_->forward(z).to(torch::kCPU);
      const double selection = torchx::all_finite(x) ? inception_score(rows(classifier_->log_posterior(x))) : NAN;
      // Finite samples can still be too large for the classifier (its IS is then NaN): diverged too.
      if (std::isfinite(selection)) {
        const MixtureScores m = score_points(o_.mixture, to_points(x), o_.cover_fraction);
        s.value = selection;
        s.metrics["classifier_is"] = s.value;
        s.metrics["exact_is"] = m.inception;
        s.metrics["strict_is"] = m.strict_inception;
        s.metrics["modes_covered"] = m.modes_covered;
        s.metrics["high_quality"] = m.high_quality;
        s.metrics["modes"] = o_.mixture.modes();
        return s;
      }
      diverged_ = true;  // the generator itself produces NaN, infinity or huge values
    }
    // Scored worst: the engine ranks a non-finite score last. The reported figures are
    // those of a generator that yields nothing (IS 1, no mode, no good sample).
    s.value = std::nan("");
    s.metrics["diverged"] = true;
    s.metrics["exact_is"] = 1.0;
    s.metrics["strict_is"] = 1.0;
    s.metrics["modes_covered"] = 0;
    s.metrics["high_quality"] = 0.0;
    s.metrics["modes"] = o_.mixture.modes();
    return s;
  }

  void save(CheckpointWriter& out) const override {
    torchx::write_archive(out, kGanMagic, [&](torch::serialize::OutputArchive& a) {
      torchx::save_module(a, "generator", *g_);
      torchx::save_module(a, "discriminator", *d_);
      torchx::save_optimizer(a, "generator_adam", *g_opt_);
      torchx::save_optimizer(a, "discriminator_adam", *d_opt_);
      a.write("rng", rng_.state());
      a.write("counters", torch::tensor({steps_, static_cast<std::int64_t>(diverged_)}, torch::kInt64));
      a.write("losses", torch::tensor({d_loss_, g_loss_}, torch::kFloat64));
    });
  }

  void load(CheckpointReader& in) override {
    torchx::read_archive(in, kGanMagic, "gan", [&](torch::serialize::InputArchive& a) {
      torchx::load_module(a, "generator", *g_);
      torchx::load_module(a, "discriminator", *d_);
      torchx::load_optimizer(a, "generator_adam", *g_opt_);
      torchx::load_optimizer(a, "discriminator_adam", *d_opt_);
      torch::Tensor rng, counters, losses;
      a.read("rng", rng);
      a.read("counters", counters);
      a.read("losses", losses);
      steps_ = counters[0].item<std::int64_t>();
      // The stream resumes exactly; a copy gets its own from copied(). (Older checkpoints
      // also hold the writer's member id, no longer read.)
      rng_.set_state(rng);
      diverged_ = counters[1].item<std::int64_t>() != 0;
      d_loss_ = losses[0].item<double>();
      g_loss_ = losses[1].item<double>();
    });
    // The h in force is the last one applied (the engine's), not the one saved with the optimizer.
    torchx::set_learning_rate(*g_opt_, lr_g_);
    torchx::set_learning_rate(*d_opt_, lr_d_);
  }

  // Another member's checkpoint: keep its networks and optimizers, but draw batches and
  // noise from this member's own stream, or two members that copy one donor with the same
  // perturbation would stay one GAN for good.
  void copied(const Copied& from) override { rng_ = torchx::MemberRng(from.seed); }

 private:
  static double read_lr(const Hyperparams& h, const char* name, double fallback) {
    auto it = h.find(name);
    if (it == h.end()) return fallback;
    const double v = as_double(it->second);
    if (!(v > 0) || !std::isfinite(v))
      throw ConfigError(std::string("hyperparameter ") + name,
                        "a learning rate must be a positive number, got " + to_string(it->second));
    return v;
  }
  torch::Tensor noise(int n) { return torch::randn({n, o_.latent}).to(device_); }
  torch::Tensor real(int n) {
    auto k = torch::randint(o_.mixture.modes(), {n}, torch::kInt64).to(device_);
    return means_.index_select(0, k) + o_.mixture.std * torch::randn({n, 2}).to(device_);
  }

  GanOptions o_;
  torch::Device device_;
  torchx::MemberRng rng_;
  torch::nn::Sequential g_, d_;
  std::unique_ptr<torch::optim::Adam> g_opt_, d_opt_;
  torch::Tensor means_;
  Classifier* classifier_ = nullptr;
  double lr_g_ = 0, lr_d_ = 0;
  bool diverged_ = false;
  std::int64_t steps_ = 0;
  double d_loss_ = 0, g_loss_ = 0;
};

}  // namespace

GanOptions read_options(const nlohmann::json& j, const std::string& where) {
  Options o(j, where);
  GanOptions g;
  auto positive = [&](const char* key, double def) {
    const double v = o.number(key, def);
    if (!(v > 0) || !std::isfinite(v)) throw ConfigError(o.path(key), "must be a positive number");
    return v;
  };
  auto at_least = [&](const char* key, std::int64_t def, std::int64_t lo, std::int64_t hi) {
    const std::int64_t v = o.integer(key, def);
    if (v < lo || v > hi)
      throw ConfigError(o.path(key), "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                         "], got " + std::to_string(v));
    return static_cast<int>(v);
  };
  const std::string dataset = o.string("dataset", "ring");
  if (dataset == "ring") {
    const int modes = at_least("modes", 8, 2, 1000);
    g.mixture = make_ring(modes, positive("radius", 2.0), positive("std", 0.05));
  } else if (dataset == "grid") {
    const int side = at_least("side", 5, 2, 100);
    g.mixture = make_grid(side, positive("spacing", 2.0), positive("std", 0.05));
  } else {
    throw ConfigError(o.path("dataset"), "unknown dataset \"" + dataset + "\" (use \"ring\" or \"grid\")");
  }
  g.loss = o.string("loss", "nonsaturating");
  if (g.loss != "nonsaturating" && g.loss != "minimax" && g.loss != "hinge")
    throw ConfigError(o.path("loss"),
                      "unknown loss \"" + g.loss + "\" (use \"nonsaturating\", \"minimax\" or \"hinge\")");
  g.d_steps = at_least("d_steps", 1, 1, 100);
  g.lr_g = positive("lr_g", 2e-4);
  g.lr_d = positive("lr_d", 2e-4);
  g.beta1 = o.number("beta1", 0.5);
  if (!(g.beta1 >= 0 && g.beta1 < 1)) throw ConfigError(o.path("beta1"), "must be in [0, 1)");
  g.beta2 = o.number("beta2", 0.999);
  if (!(g.beta2 >= 0 && g.beta2 < 1)) throw ConfigError(o.path("beta2"), "must be in [0, 1)");
  g.latent = at_least("latent", 8, 1, 4096);
  g.hidden = at_least("hidden", 64, 1, 65536);
  g.layers = at_least("layers", 2, 1, 32);
  g.batch = at_least("batch", 64, 1, 1 << 20);
  g.background_class = o.boolean("background_class", false);
  g.eval_samples = at_least("eval_samples", 2500, 10, 1 << 22);
  g.cover_fraction = o.number("cover_fraction", 0.2);
  if (!(g.cover_fraction > 0 && g.cover_fraction <= 1))
    throw ConfigError(o.path("cover_fraction"), "must be in (0, 1]");
  g.device = torchx::read_device(o).str();
  o.finish();
  return g;
}

void check_hyperparams(const Hyperparams& h) {
  for (const auto& [name, v] : h) {
    if (name != "lr_g" && name != "lr_d")
      throw ConfigError("h." + name, "the gan trainable has no hyperparameter of that name (it takes lr_g and lr_d)");
    const double x = as_double(v);
    if (!(x > 0) || !std::isfinite(x))
      throw ConfigError("h." + name, "a learning rate must be a positive number, got " + to_string(v));
  }
}

std::unique_ptr<Trainable> make_trainable(const TrainableContext& ctx) {
  return std::make_unique<GanTrainable>(read_options(ctx.options, "trainable"), ctx.seed);
}

std::vector<std::vector<double>> classifier_log_posterior(const Mixture& m, const std::vector<Point>& x, bool fresh,
                                                          bool background) {
  torchx::use_one_thread();
  std::unique_ptr<Classifier> own;
  if (fresh) own = std::make_unique<Classifier>(m, background);
  return rows((fresh ? *own : classifier_for(m, background)).log_posterior(to_tensor(x)));
}

}  // namespace pbt::gan
