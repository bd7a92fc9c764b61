#include "trainables/torch/common.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <mutex>
#include <sstream>

namespace pbt::torchx {

void use_one_thread() {
  static std::once_flag once;
  std::call_once(once, [] {
    torch::set_num_threads(1);
    // Inter-op threads can be set only before LibTorch first uses them; a process that
    // already did (a test, an embedding program) keeps its own.
    try {
      torch::set_num_interop_threads(1);
    } catch (const std::exception&) {
    }
  });
}

torch::Device read_device(Options& o) {
  const std::string name = o.string("device", "cpu");
  try {
    torch::Device d(name);
    if (d.is_cuda() && !torch::cuda::is_available())
      throw ConfigError(o.path("device"),
                        "\"" + name +
                            "\" asked for, but this LibTorch sees no CUDA device "
                            "(Debian's LibTorch is CPU-only; build against a CUDA LibTorch with Torch_DIR)");
    if (!d.is_cpu() && !d.is_cuda())
      throw ConfigError(o.path("device"), "\"" + name + "\" is not supported (use \"cpu\" or \"cuda[:N]\")");
    return d;
  } catch (const c10::Error&) {
    throw ConfigError(o.path("device"), "\"" + name + "\" is not a device name (use \"cpu\" or \"cuda[:N]\")");
  }
}

void set_learning_rate(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
}

double learning_rate(const torch::optim::Optimizer& opt) { return opt.param_groups().at(0).options().get_lr(); }

namespace {
at::Generator global_cpu() { return at::detail::getDefaultCPUGenerator(); }
}  // namespace

MemberRng::MemberRng(std::uint64_t seed) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  state_ = g.get_state();
}

MemberRng::Scope::Scope(MemberRng& rng) : rng_(rng) {
  auto g = global_cpu();
  std::lock_guard<std::mutex> lock(g.mutex());
  outer_ = g.get_state();
  g.set_state(rng_.state_);
}

MemberRng::Scope::~Scope() {
  auto g = global_cpu();
  std::lock_guard<std::mutex> lock(g.mutex());
  rng_.state_ = g.get_state();
  g.set_state(outer_);
}

void write_archive(CheckpointWriter& out, std::uint32_t magic,
                   const std::function<void(torch::serialize::OutputArchive&)>& fill) {
  torch::serialize::OutputArchive a;
  fill(a);
  std::ostringstream s;
  a.save_to(s);
  out.write(magic);
  out.write_string(s.str());
}

void read_archive(CheckpointReader& in, std::uint32_t magic, const std::string& what,
                  const std::function<void(torch::serialize::InputArchive&)>& read) {
  if (in.read<std::uint32_t>() != magic)
    throw CheckpointError("checkpoint is not a " + what + " checkpoint (wrong magic number)");
  std::istringstream s(in.read_string());
  try {
    torch::serialize::InputArchive a;
    a.load_from(s);
    read(a);
  } catch (const c10::Error& e) {
    throw CheckpointError("cannot read the " + what + " checkpoint: " + e.what_without_backtrace());
  }
}

void save_module(torch::serialize::OutputArchive& a, const std::string& key, const torch::nn::Module& m) {
  torch::serialize::OutputArchive sub;
  m.save(sub);
  a.write(key, sub);
}

void load_module(torch::serialize::InputArchive& a, const std::string& key, torch::nn::Module& m) {
  torch::serialize::InputArchive sub;
  a.read(key, sub);
  m.load(sub);
}

void save_optimizer(torch::serialize::OutputArchive& a, const std::string& key, const torch::optim::Optimizer& o) {
  torch::serialize::OutputArchive sub;
  o.save(sub);
  a.write(key, sub);
}

void load_optimizer(torch::serialize::InputArchive& a, const std::string& key, torch::optim::Optimizer& o) {
  torch::serialize::InputArchive sub;
  a.read(key, sub);
  o.load(sub);
}

bool all_finite(const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); }

}  // namespace pbt::torchx
