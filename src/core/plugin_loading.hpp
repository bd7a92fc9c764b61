#pragma once
// Between the plugin loader (core/plugin.cpp) and the registries a plugin registers into
// (trainable kinds, exploit and explore strategies).
#include <string>

namespace pbt::detail {

// Called by register_trainable/register_hyperparams_check (what = "trainable kind") and
// register_exploit/register_explore ("exploit strategy", "explore strategy") before they
// change `name`: while a plugin registers, refuses (throws) a name that exists and that this
// plugin did not add.
void check_plugin_registers(const std::string& what, const std::string& name, bool exists);

}  // namespace pbt::detail
