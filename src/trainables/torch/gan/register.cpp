// Placeholder until the gan trainable lands: registers nothing yet.
#include "trainables/torch/torch_trainables.hpp"

namespace pbt {
void register_gan_trainable() {}
}  // namespace pbt
