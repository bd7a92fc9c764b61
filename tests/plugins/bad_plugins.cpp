// Plugins that `pbt` must refuse, one per case, chosen by the macro the build defines
// (tests/CMakeLists.txt): each is its own shared library.
#include <stdexcept>

#include "pbt/plugin.hpp"
#include "pbt/trainable.hpp"

#if defined(PBT_BAD_NO_ENTRY)
// A shared library, but no pbt_plugin_entry.
extern "C" int not_a_plugin_entry() { return 0; }
#elif defined(PBT_BAD_ABI)
// Built for a plugin ABI this pbt does not load.
namespace {
int register_nothing(char*, unsigned long) { return 0; }
}  // namespace
extern "C" __attribute__((visibility("default"))) const PbtPluginEntry* pbt_plugin_entry() {
  static const PbtPluginEntry entry = {PBT_PLUGIN_ABI_VERSION + 1000, register_nothing};
  return &entry;
}
#elif defined(PBT_BAD_THROWS)
namespace {
void register_throws() { throw std::runtime_error("the model file weights.bin is missing"); }
}  // namespace
PBT_PLUGIN(register_throws)
#elif defined(PBT_BAD_EXISTING_KIND)
// "toy" is built into pbt: a plugin may not replace it.
namespace {
std::unique_ptr<pbt::Trainable> make_none(const pbt::TrainableContext&) { return nullptr; }
void register_toy_again() { pbt::register_trainable("toy", make_none); }
}  // namespace
PBT_PLUGIN(register_toy_again)
#elif defined(PBT_BAD_EXISTING_STRATEGY)
// "perturb" is built in: a plugin may not replace an explore strategy either.
#include "pbt/strategy.hpp"
namespace {
void register_perturb_again() {
  pbt::register_explore("perturb", [](const nlohmann::json&, const std::string&) { return nullptr; });
}
}  // namespace
PBT_PLUGIN(register_perturb_again)
#elif defined(PBT_BAD_EMPTY)
// Loads, registers nothing.
namespace {
void register_nothing() {}
}  // namespace
PBT_PLUGIN(register_nothing)
#endif
