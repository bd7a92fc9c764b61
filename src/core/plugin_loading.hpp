#pragma once
// Between the plugin loader (core/plugin.cpp) and the trainable registry.
#include <string>

namespace pbt::detail {

// Called by register_trainable/register_hyperparams_check before they change `kind`: while a
// plugin registers, refuses (throws) a kind that exists and that this plugin did not add.
void check_plugin_registers(const std::string& kind, bool exists);

}  // namespace pbt::detail
