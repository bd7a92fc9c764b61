#include <mutex>

#include "trainables/torch/torch_trainables.hpp"

namespace pbt {

void register_torch_trainables() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_rl_trainable();
    register_gan_trainable();
    register_translation_trainable();
  });
}

}  // namespace pbt
