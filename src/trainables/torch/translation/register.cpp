// Registers kind "translation": a small Transformer on a parallel corpus, scored by dev BLEU.
#include "trainables/torch/torch_trainables.hpp"
#include "trainables/torch/translation/translation.hpp"

namespace pbt {
void register_translation_trainable() {
  register_trainable(
      "translation", [](const TrainableContext& ctx) { return mt::make_translation_trainable(ctx, "trainable"); },
      [](const nlohmann::json& options, const std::string& where) { mt::check_options(options, where); });
  register_hyperparams_check("translation", mt::check_hyperparams);
}
}  // namespace pbt
