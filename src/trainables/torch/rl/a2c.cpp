#include "trainables/torch/rl/a2c.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "pbt/options.hpp"

namespace pbt::rl {

namespace {

constexpr std::uint32_t kMagic = 0x31434132;  // "A2C1"
constexpr double kLog2Pi = 1.8378770664093453;

std::uint64_t mix(std::uint64_t x) {  // splitmix64: independent streams from one seed
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
std::uint64_t stream(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0) { return mix(mix(seed ^ mix(a)) + b); }

// Valid ranges of the hyperparameters (shared by the options' defaults and by h).
void check_lr(double v, const std::string& where) {
  if (!(v > 0 && v <= 1)) throw ConfigError(where, "learning rate must be in (0, 1], got " + std::to_string(v));
}
void check_entropy(double v, const std::string& where) {
  if (!(v >= 0 && v <= 10)) throw ConfigError(where, "entropy cost must be in [0, 10], got " + std::to_string(v));
}
void check_unroll(double v, const std::string& where) {
  if (!(v >= 1 && v <= 1000))
    throw ConfigError(where, "unroll length must be an integer in [1, 1000], got " + std::to_string(v));
}
void check_gamma(double v, const std::string& where) {
  if (!(v >= 0 && v <= 1)) throw ConfigError(where, "discount must be in [0, 1], got " + std::to_string(v));
}
void check_value_cost(double v, const std::string& where) {
  if (!(v >= 0 && v <= 100)) throw ConfigError(where, "value cost must be in [0, 100], got " + std::to_string(v));
}

void init_linear(torch::nn::Linear& l, double gain) {
  torch::NoGradGuard g;
  torch::nn::init::orthogonal_(l->weight, gain);
  torch::nn::init::zeros_(l->bias);
}

// One action per row of [n, K] logits, drawn by inverting the softmax's CDF at u ~ U(0, 1).
void sample_categorical(const torch::Tensor& logits, std::mt19937_64& rng, float* a) {
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  const auto p = torch::softmax(logits, 1).contiguous();
  const float* pp = p.data_ptr<float>();
  const auto n = p.size(0), K = p.size(1);
  for (std::int64_t i = 0; i < n; ++i) {
    double u = uni(rng), c = 0;
    std::int64_t k = 0;
    for (; k < K - 1; ++k) {
      c += pp[i * K + k];
      if (u < c) break;
    }
    a[i] = static_cast<float>(k);
  }
}

torch::nn::Sequential body(int in, int hidden, int layers) {
  torch::nn::Sequential s;
  for (int i = 0; i < layers; ++i) {
    torch::nn::Linear l(i == 0 ? in : hidden, hidden);
    init_linear(l, std::sqrt(2.0));
    s->push_back(l);
    s->push_back(torch::nn::Tanh());
  }
  return s;
}

}  // namespace

A2cOptions read_a2c_options(const nlohmann::json& j, const std::string& where) {
  Options o(j, where);
  A2cOptions a;
  a.env = o.string("env", std::nullopt);
  try {
    env_spec(a.env);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(o.path("env"), e.what());
  }
  auto int_in = [&](const char* key, std::int64_t def, std::int64_t lo, std::int64_t hi) {
    const std::int64_t v = o.integer(key, def);
    if (v < lo || v > hi)
      throw ConfigError(
          o.path(key), "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(v));
    return v;
  };
  auto num_in = [&](const char* key, double def, double lo, double hi) {
    const double v = o.number(key, def);
    if (!(v >= lo && v <= hi))
      throw ConfigError(
          o.path(key), "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(v));
    return v;
  };
  a.envs = static_cast<int>(int_in("envs", a.envs, 1, 4096));
  a.hidden = static_cast<int>(int_in("hidden", a.hidden, 1, 4096));
  a.layers = static_cast<int>(int_in("layers", a.layers, 1, 8));
  a.shared = o.boolean("shared", a.shared);
  a.frames_per_step = int_in("frames_per_step", a.frames_per_step, 1, 100000000);
  a.max_grad_norm = num_in("max_grad_norm", a.max_grad_norm, 0, 1e6);
  a.reward_scale = o.number("reward_scale", a.reward_scale);
  if (!(a.reward_scale > 0 && std::isfinite(a.reward_scale)))
    throw ConfigError(o.path("reward_scale"), "must be a positive number");
  a.window = static_cast<int>(int_in("window", a.window, 1, 10000));
  a.fresh_episodes = static_cast<int>(int_in("fresh_episodes", a.fresh_episodes, 0, 100000));
  a.lr = o.number("lr", a.lr);
  check_lr(a.lr, o.path("lr"));
  a.entropy_cost = o.number("entropy_cost", a.entropy_cost);
  check_entropy(a.entropy_cost, o.path("entropy_cost"));
  a.unroll_length = static_cast<int>(o.integer("unroll_length", a.unroll_length));
  check_unroll(a.unroll_length, o.path("unroll_length"));
  a.gamma = o.number("gamma", a.gamma);
  check_gamma(a.gamma, o.path("gamma"));
  a.value_cost = o.number("value_cost", a.value_cost);
  check_value_cost(a.value_cost, o.path("value_cost"));
  a.device = torchx::read_device(o);
  o.finish();
  return a;
}

ActorCriticImpl::ActorCriticImpl(int obs_dim, int n_out, bool continuous_, int hidden, int layers, bool shared_)
    : continuous(continuous_), shared(shared_) {
  pi_body = register_module("pi_body", body(obs_dim, hidden, layers));
  if (!shared) v_body = register_module("v_body", body(obs_dim, hidden, layers));
  pi_head = register_module("pi_head", torch::nn::Linear(hidden, n_out));
  v_head = register_module("v_head", torch::nn::Linear(hidden, 1));
  init_linear(pi_head, 0.01);  // a near-uniform (or near-zero-mean) first policy
  init_linear(v_head, 1.0);
  if (continuous) log_std = register_parameter("log_std", torch::zeros({n_out}));
}

torch::Tensor ActorCriticImpl::policy(const torch::Tensor& x) { return pi_head->forward(pi_body->forward(x)); }

torch::Tensor ActorCriticImpl::value(const torch::Tensor& x) {
  return v_head->forward(shared ? pi_body->forward(x) : v_body->forward(x)).squeeze(-1);
}

A2cTrainable::A2cTrainable(const A2cOptions& o, int member, std::uint64_t seed)
    : o_(o),
      spec_(env_spec(o.env)),
      member_(member),
      seed_(seed),
      torch_rng_(stream(seed, 1)),
      rng_(stream(seed, 2)),
      lr_(o.lr),
      entropy_cost_(o.entropy_cost),
      gamma_(o.gamma),
      value_cost_(o.value_cost),
      unroll_(o.unroll_length) {
  torchx::use_one_thread();
  env_ = make_env(o.env, o.envs, stream(seed, 3));
  const bool continuous = spec_.n_actions == 0;
  {
    auto s = torch_rng_.enter();  // the initial weights come from this member's own stream
    net_ = ActorCritic(spec_.obs_dim, continuous ? spec_.act_dim : spec_.n_actions, continuous, o.hidden, o.layers,
                       o.shared);
  }
  net_->to(o.device);
  opt_ = std::make_unique<torch::optim::Adam>(net_->parameters(), torch::optim::AdamOptions(lr_).eps(1e-5));
}

namespace {
// One hyperparameter, checked; the value apply() will use.
double checked_hyperparam(const std::string& name, const Value& v) {
  const std::string where = "h." + name;
  double x;
  try {
    x = as_double(v);
  } catch (const std::exception&) {
    throw ConfigError(where, "the rl trainable needs a number");
  }
  if (name == "lr") check_lr(x, where);
  else if (name == "entropy_cost") check_entropy(x, where);
  else if (name == "unroll_length") check_unroll(std::round(x), where), x = std::round(x);
  else if (name == "gamma") check_gamma(x, where);
  else if (name == "value_cost") check_value_cost(x, where);
  else
    throw ConfigError(where,
                      "unknown hyperparameter for the rl trainable (known: lr, entropy_cost, "
                      "unroll_length, gamma, value_cost)");
  return x;
}
}  // namespace

void check_hyperparams(const Hyperparams& h) {
  for (const auto& [name, v] : h) checked_hyperparam(name, v);
}

void A2cTrainable::apply(const Hyperparams& h) {
  for (const auto& [name, v] : h) {
    const double x = checked_hyperparam(name, v);
    if (name == "lr") lr_ = x;
    else if (name == "entropy_cost") entropy_cost_ = x;
    else if (name == "unroll_length") unroll_ = static_cast<int>(std::lround(x));
    else if (name == "gamma") gamma_ = x;
    else if (name == "value_cost") value_cost_ = x;
  }
  torchx::set_learning_rate(*opt_, lr_);  // in place: Adam's moments are kept
}

void A2cTrainable::poison_for_test() {
  torch::NoGradGuard g;
  for (auto& p : net_->parameters()) p.fill_(std::numeric_limits<float>::quiet_NaN());
}

void A2cTrainable::step(std::int64_t n) {
  debt_ += n * o_.frames_per_step;
  while (debt_ > 0) {
    if (diverged_) {  // a diverged agent learns nothing more; it waits to be replaced
      frames_ += debt_;
      debt_ = 0;
      break;
    }
    update();
    debt_ -= static_cast<std::int64_t>(unroll_) * o_.envs;
  }
}

void A2cTrainable::update() {
  torch::NoGradGuard outer_no_grad;
  const int T = unroll_, N = o_.envs, D = spec_.obs_dim;
  const bool continuous = spec_.n_actions == 0;
  const int A = continuous ? spec_.act_dim : 1;
  std::vector<float> obs(static_cast<std::size_t>(T) * N * D), act(static_cast<std::size_t>(T) * N * A),
      rew(static_cast<std::size_t>(T) * N);
  std::vector<std::uint8_t> term(static_cast<std::size_t>(T) * N), trunc(static_cast<std::size_t>(T) * N);
  std::vector<float> final_obs;  // of truncated episodes, in order
  std::vector<int> final_index;  // where each one belongs in the unroll
  std::normal_distribution<float> normal(0.f, 1.f);

  // Acting: sample from the current policy, N copies at a time.
  for (int t = 0; t < T; ++t) {
    const float* o = env_->obs().data();
    std::copy(o, o + static_cast<std::size_t>(N) * D, obs.begin() + static_cast<std::ptrdiff_t>(t) * N * D);
    auto x = torch::from_blob(const_cast<float*>(o), {N, D}).to(o_.device);
    auto out = net_->policy(x).to(torch::kCPU).contiguous();
    float* a = act.data() + static_cast<std::size_t>(t) * N * A;
    if (continuous) {
      auto std_ = net_->log_std.clamp(-5, 2).exp().to(torch::kCPU).contiguous();
      const float* mu = out.data_ptr<float>();
      const float* sd = std_.data_ptr<float>();
      for (int i = 0; i < N; ++i)
        for (int k = 0; k < A; ++k) a[i * A + k] = mu[i * A + k] + sd[k] * normal(rng_);
    } else {
      sample_categorical(out, rng_, a);
    }
    for (int i = 0; i < N * A; ++i)
      if (!std::isfinite(a[i])) {  // NaN weights: score this member worst, stop training it
        diverged_ = true;
        last_loss_ = std::numeric_limits<double>::quiet_NaN();
        return;
      }
    env_->step(a);
    for (int i = 0; i < N; ++i) {
      const std::size_t idx = static_cast<std::size_t>(t) * N + i;
      rew[idx] = static_cast<float>(env_->reward()[i] * o_.reward_scale);
      term[idx] = env_->terminated()[i];
      trunc[idx] = env_->truncated()[i];
      if (trunc[idx]) {
        const float* f = env_->final_obs().data() + static_cast<std::size_t>(i) * D;
        final_obs.insert(final_obs.end(), f, f + D);
        final_index.push_back(static_cast<int>(idx));
      }
    }
    for (double r : env_->finished_returns()) {
      returns_.push_back(r);
      if (static_cast<int>(returns_.size()) > o_.window) returns_.pop_front();
      episodes_++;
    }
  }
  frames_ += static_cast<std::int64_t>(T) * N;

  // n-step returns, bootstrapped from V of the state after the unroll; a time-limit
  // truncation is not a terminal state, so its reward also gets gamma * V(final state).
  std::vector<float> ret(static_cast<std::size_t>(T) * N);
  {
    auto vb = net_->value(torch::from_blob(const_cast<float*>(env_->obs().data()), {N, D}).to(o_.device))
                  .to(torch::kCPU)
                  .contiguous();
    std::vector<float> boot(vb.data_ptr<float>(), vb.data_ptr<float>() + N);
    if (!final_index.empty()) {
      const int F = static_cast<int>(final_index.size());
      auto vf = net_->value(torch::from_blob(final_obs.data(), {F, D}).to(o_.device)).to(torch::kCPU).contiguous();
      for (int f = 0; f < F; ++f) rew[final_index[f]] += static_cast<float>(gamma_) * vf.data_ptr<float>()[f];
    }
    for (int i = 0; i < N; ++i) {
      double R = boot[i];
      for (int t = T - 1; t >= 0; --t) {
        const std::size_t idx = static_cast<std::size_t>(t) * N + i;
        R = (term[idx] || trunc[idx]) ? rew[idx] : rew[idx] + gamma_ * R;
        ret[idx] = static_cast<float>(R);
      }
    }
  }

  // Learning: one gradient step on the whole unroll.
  torch::AutoGradMode grad(true);
  const int B = T * N;
  auto X = torch::from_blob(obs.data(), {B, D}).to(o_.device);
  auto R = torch::from_blob(ret.data(), {B}).to(o_.device);
  auto values = net_->value(X);
  auto adv = R - values.detach();
  auto out = net_->policy(X);
  torch::Tensor logp, entropy;
  if (continuous) {
    auto a = torch::from_blob(act.data(), {B, A}).to(o_.device);
    auto log_std = net_->log_std.clamp(-5, 2);
    auto z = (a - out) / log_std.exp();
    logp = (-0.5 * z * z - log_std - 0.5 * kLog2Pi).sum(1);
    entropy = (0.5 + 0.5 * kLog2Pi + log_std).sum().expand({B});
  } else {
    auto a = torch::from_blob(act.data(), {B}).to(torch::kLong).to(o_.device);
    auto logp_all = torch::log_softmax(out, 1);
    logp = logp_all.gather(1, a.unsqueeze(1)).squeeze(1);
    entropy = -(logp_all.exp() * logp_all).sum(1);
  }
  auto policy_loss = -(logp * adv).mean();
  auto value_loss = (R - values).pow(2).mean();
  auto loss = policy_loss + value_cost_ * value_loss - entropy_cost_ * entropy.mean();
  last_loss_ = loss.item<double>();
  if (!std::isfinite(last_loss_)) {
    diverged_ = true;
    return;
  }
  opt_->zero_grad();
  loss.backward();
  if (o_.max_grad_norm > 0) torch::nn::utils::clip_grad_norm_(net_->parameters(), o_.max_grad_norm);
  opt_->step();
  updates_++;
}

double A2cTrainable::fresh_return(int episodes, std::uint64_t s, bool greedy) {
  torch::NoGradGuard g;
  auto env = make_env(o_.env, episodes, s);
  std::mt19937_64 rng(stream(s, 5));  // the fresh episodes' own action noise
  std::normal_distribution<float> normal(0.f, 1.f);
  const int D = spec_.obs_dim;
  const bool continuous = spec_.n_actions == 0;
  const int A = continuous ? spec_.act_dim : 1;
  std::vector<std::uint8_t> done(episodes, 0);
  std::vector<double> ret(episodes, 0.0);
  std::vector<float> a(static_cast<std::size_t>(episodes) * A);
  auto std_ = continuous ? net_->log_std.clamp(-5, 2).exp().to(torch::kCPU).contiguous() : torch::Tensor();
  int left = episodes;
  for (int t = 0; t < spec_.max_steps && left > 0; ++t) {
    auto x = torch::from_blob(const_cast<float*>(env->obs().data()), {episodes, D}).to(o_.device);
    auto out = net_->policy(x).to(torch::kCPU).contiguous();
    if (continuous) {
      const float* mu = out.data_ptr<float>();
      const float* sd = std_.data_ptr<float>();
      for (int i = 0; i < episodes; ++i)
        for (int k = 0; k < A; ++k) a[i * A + k] = mu[i * A + k] + (greedy ? 0.f : sd[k] * normal(rng));
    } else if (greedy) {
      auto pick = out.argmax(1).to(torch::kFloat).contiguous();
      std::copy(pick.data_ptr<float>(), pick.data_ptr<float>() + episodes, a.begin());
    } else {
      sample_categorical(out, rng, a.data());
    }
    for (float& v : a)
      if (!std::isfinite(v)) return std::numeric_limits<double>::quiet_NaN();
    env->step(a.data());
    for (int i = 0; i < episodes; ++i) {
      if (done[i]) continue;
      ret[i] += env->reward()[i];
      if (env->terminated()[i] || env->truncated()[i]) done[i] = 1, left--;
    }
  }
  double sum = 0;
  for (double r : ret) sum += r;
  return sum / episodes;
}

Score A2cTrainable::eval() {
  Score s;
  evals_++;
  if (diverged_) {
    // NaN ranks last; the window of worst-possible returns lets the t-test replace it too.
    s.value = std::numeric_limits<double>::quiet_NaN();
    s.samples.assign(o_.window, spec_.worst_return);
    s.metrics = {{"diverged", true}, {"frames", frames_}};
    return s;
  }
  if (returns_.empty()) {
    s.value = spec_.worst_return;  // no episode finished yet: no evidence of any return
  } else {
    s.samples.assign(returns_.begin(), returns_.end());
    double sum = 0;
    for (double r : s.samples) sum += r;
    s.value = sum / s.samples.size();
  }
  s.metrics = {{"frames", frames_}, {"updates", updates_}, {"episodes", episodes_}, {"loss", last_loss_}};
  if (o_.fresh_episodes > 0) {
    // A stream of its own per eval: never the training environments' stream.
    const std::uint64_t fs = stream(seed_, 0xF5E5, static_cast<std::uint64_t>(evals_));
    const double fr = fresh_return(o_.fresh_episodes, fs), frg = fresh_return(o_.fresh_episodes, fs, true);
    if (std::isfinite(fr)) s.metrics["fresh_return"] = fr;
    if (std::isfinite(frg)) s.metrics["fresh_return_greedy"] = frg;
    s.metrics["fresh_episodes"] = o_.fresh_episodes;
  }
  return s;
}

void A2cTrainable::save(CheckpointWriter& out) const {
  CheckpointWriter plain;
  plain.write<std::int32_t>(member_);  // the writer; no longer read (copied() tells a copy)
  env_->save(plain);
  {
    std::ostringstream r;
    r << rng_;
    plain.write_string(r.str());
  }
  plain.write_vector(std::vector<double>(returns_.begin(), returns_.end()));
  plain.write(frames_), plain.write(updates_), plain.write(episodes_), plain.write(evals_), plain.write(debt_);
  plain.write(last_loss_);
  plain.write<std::uint8_t>(diverged_);
  const std::string plain_bytes = plain.take();
  torchx::write_archive(out, kMagic, [&](torch::serialize::OutputArchive& a) {
    torchx::save_module(a, "net", *net_);
    torchx::save_optimizer(a, "opt", *opt_);
    a.write("torch_rng", torch_rng_.state());
    // The plain C++ state rides in the same archive, as bytes in a uint8 tensor.
    auto t = torch::empty({static_cast<std::int64_t>(plain_bytes.size())}, torch::kUInt8);
    std::memcpy(t.data_ptr<std::uint8_t>(), plain_bytes.data(), plain_bytes.size());
    a.write("state", t);
  });
}

void A2cTrainable::load(CheckpointReader& in) {
  std::string plain_bytes;
  torchx::read_archive(in, kMagic, "rl (A2C)", [&](torch::serialize::InputArchive& a) {
    torchx::load_module(a, "net", *net_);
    torchx::load_optimizer(a, "opt", *opt_);
    torch::Tensor r, t;
    a.read("torch_rng", r);
    torch_rng_.set_state(r);
    a.read("state", t);
    t = t.contiguous();
    plain_bytes.assign(reinterpret_cast<const char*>(t.data_ptr<std::uint8_t>()), t.numel());
  });
  net_->to(o_.device);
  CheckpointReader plain(plain_bytes);
  (void)plain.read<std::int32_t>();  // the writer's member id
  env_->load(plain);
  {
    std::istringstream r(plain.read_string());
    r >> rng_;
    if (!r) throw CheckpointError("cannot read the agent's random state");
  }
  auto rets = plain.read_vector<double>();
  returns_.assign(rets.begin(), rets.end());
  while (static_cast<int>(returns_.size()) > o_.window) returns_.pop_front();
  frames_ = plain.read<std::int64_t>(), updates_ = plain.read<std::int64_t>(), episodes_ = plain.read<std::int64_t>();
  evals_ = plain.read<std::int64_t>(), debt_ = plain.read<std::int64_t>();
  last_loss_ = plain.read<double>();
  diverged_ = plain.read<std::uint8_t>() != 0;
  torchx::set_learning_rate(*opt_, lr_);  // h in force stays this member's until apply
}

void A2cTrainable::copied(const Copied& from) {
  // Keep the donor's weights, optimizer state, running episodes and return window, but
  // draw this member's own future resets and actions, so the two lineages do not replay
  // the same random numbers.
  env_->reseed(stream(from.seed, 1));
  rng_.seed(stream(from.seed, 2));
  torch_rng_ = torchx::MemberRng(stream(from.seed, 3));
}

std::unique_ptr<Trainable> make_a2c_trainable(const TrainableContext& ctx) {
  return std::make_unique<A2cTrainable>(read_a2c_options(ctx.options, "trainable"), ctx.member, ctx.seed);
}

}  // namespace pbt::rl
