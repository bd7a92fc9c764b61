#pragma once
// What every LibTorch trainable needs: one thread per worker, a device from the config,
// learning rates changed in place, and the whole training state (modules, optimizers, the
// member's own random stream) in one checkpoint blob. Only the LibTorch trainables include
// this header: LibTorch costs ~20 s of compile time per file that sees it.
#include <cstdint>
#include <functional>
#include <string>

#include <torch/torch.h>

#include "pbt/checkpoint_io.hpp"
#include "pbt/options.hpp"

namespace pbt::torchx {

// One intra-op (and inter-op) thread per process, so K workers use K cores and do not
// fight over them. Every LibTorch trainable calls it when it is built.
void use_one_thread();

// The `device` option: "cpu" (default), "cuda" or "cuda:N". Refused, naming the field, when
// this LibTorch cannot use it (Debian's LibTorch is CPU-only).
torch::Device read_device(Options& o);

// Sets the learning rate of every parameter group, in place (optimizer state is kept).
void set_learning_rate(torch::optim::Optimizer& opt, double lr);
double learning_rate(const torch::optim::Optimizer& opt);

// A member's own random stream. LibTorch draws dropout masks and samples from its global
// CPU generator; each member keeps its own generator state and swaps it in while it runs,
// so what a member draws never depends on which members its worker ran before (and a
// checkpoint resumes the stream exactly).
class MemberRng {
 public:
  explicit MemberRng(std::uint64_t seed);
  // While a Scope lives, the global CPU generator is this member's; on exit the member's
  // state is kept and the previous global state put back.
  class Scope {
   public:
    explicit Scope(MemberRng& rng);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    MemberRng& rng_;
    torch::Tensor outer_;
  };
  Scope enter() { return Scope(*this); }
  const torch::Tensor& state() const { return state_; }
  void set_state(const torch::Tensor& s) { state_ = s.clone(); }

 private:
  torch::Tensor state_;
};

// Checkpoint bytes as one LibTorch archive, framed by a magic number so that another
// trainable's bytes are refused with a clear error instead of a deserialisation crash.
void write_archive(CheckpointWriter& out, std::uint32_t magic,
                   const std::function<void(torch::serialize::OutputArchive&)>& fill);
void read_archive(CheckpointReader& in, std::uint32_t magic, const std::string& what,
                  const std::function<void(torch::serialize::InputArchive&)>& read);

// Nested archives for a module or an optimizer under a key.
void save_module(torch::serialize::OutputArchive& a, const std::string& key, const torch::nn::Module& m);
void load_module(torch::serialize::InputArchive& a, const std::string& key, torch::nn::Module& m);
void save_optimizer(torch::serialize::OutputArchive& a, const std::string& key, const torch::optim::Optimizer& o);
void load_optimizer(torch::serialize::InputArchive& a, const std::string& key, torch::optim::Optimizer& o);

bool all_finite(const torch::Tensor& t);

}  // namespace pbt::torchx
