// Placeholder until the translation trainable lands: registers nothing yet.
#include "trainables/torch/torch_trainables.hpp"

namespace pbt {
void register_translation_trainable() {}
}  // namespace pbt
