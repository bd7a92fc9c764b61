// Registers the GAN trainable (kind "gan"): see gan.hpp and docs/gan.md.
#include "trainables/torch/gan/gan.hpp"
#include "trainables/torch/torch_trainables.hpp"

namespace pbt {
void register_gan_trainable() {
  register_trainable("gan", gan::make_trainable,
                     [](const nlohmann::json& j, const std::string& where) { gan::read_options(j, where); });
  register_hyperparams_check("gan", gan::check_hyperparams);
}
}  // namespace pbt
