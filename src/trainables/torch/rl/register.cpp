// Placeholder until the rl trainable lands: registers nothing yet.
#include "trainables/torch/torch_trainables.hpp"

namespace pbt {
void register_rl_trainable() {}
}  // namespace pbt
