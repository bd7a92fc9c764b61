// The shared LibTorch helpers: learning rate in place, a member's own random stream,
// checkpoint archives that refuse foreign bytes.
#include <gtest/gtest.h>

#include "trainables/torch/common.hpp"

namespace pbt {
namespace {

TEST(TorchCommon, LearningRateChangesInPlaceAndKeepsOptimizerState) {
  torch::nn::Linear net(3, 1);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
  net->forward(torch::ones({2, 3})).sum().backward();
  opt.step();
  torchx::set_learning_rate(opt, 0.25);
  EXPECT_DOUBLE_EQ(torchx::learning_rate(opt), 0.25);
  EXPECT_FALSE(opt.state().empty());  // Adam's moments survive the change
}

TEST(TorchCommon, MemberStreamsAreIndependentOfInterleaving) {
  torchx::MemberRng a(1), b(2);
  torch::Tensor a1, a2;
  {
    auto s = a.enter();
    a1 = torch::rand({4});
  }
  {
    auto s = b.enter();
    torch::rand({100});  // b's draws must not move a's stream
  }
  {
    auto s = a.enter();
    a2 = torch::rand({4});
  }
  torchx::MemberRng a_again(1);
  auto s = a_again.enter();
  EXPECT_TRUE(torch::equal(torch::rand({4}), a1));
  EXPECT_TRUE(torch::equal(torch::rand({4}), a2));
}

TEST(TorchCommon, ArchiveRoundTripAndForeignBytesRefused) {
  torch::nn::Linear net(3, 2);
  CheckpointWriter w;
  torchx::write_archive(w, 0x12345678, [&](auto& a) { torchx::save_module(a, "net", *net); });
  torch::nn::Linear other(3, 2);
  CheckpointReader r(w.bytes());
  torchx::read_archive(r, 0x12345678, "test", [&](auto& a) { torchx::load_module(a, "net", *other); });
  EXPECT_TRUE(torch::equal(net->weight, other->weight));
  CheckpointReader wrong(w.bytes());
  EXPECT_THROW(torchx::read_archive(wrong, 0x87654321, "test", [](auto&) {}), CheckpointError);
}

}  // namespace
}  // namespace pbt
