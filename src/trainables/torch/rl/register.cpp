// Registers kind "rl": the A2C agent on a classic-control environment (a2c.hpp).
#include "trainables/torch/rl/a2c.hpp"
#include "trainables/torch/torch_trainables.hpp"

namespace pbt {
void register_rl_trainable() {
  register_trainable("rl", rl::make_a2c_trainable, [](const nlohmann::json& options, const std::string& where) {
    rl::read_a2c_options(options, where);
  });
  register_hyperparams_check("rl", rl::check_hyperparams);
}
}  // namespace pbt
