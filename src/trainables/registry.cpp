#include "pbt/registry.hpp"
#include "pbt/error.hpp"
#include "pbt/plugin.hpp"
#include "pbt/trainable.hpp"
#include "core/plugin_loading.hpp"

namespace pbt {

namespace {
struct Entry {
  TrainableFactory make;
  std::function<void(const nlohmann::json&, const std::string&)> check;
  HyperparamsCheck check_h;
};
Registry<Entry>& registry() {
  static Registry<Entry> r("trainable kind", {}, Registry<Entry>::Listed::alphabetically);
  return r;
}
bool has_factory(const std::string& kind) {
  const auto e = registry().get(kind);
  return e && e->make;
}
Entry find(const std::string& kind, const std::string& where) {
  register_builtin_trainables();
  // A kind that a plugin shipped with pbt provides (rl: LibTorch) is loaded when first named.
  if (!registry().get(kind)) {
    if (plugins_deferred()) return Entry{};  // a reader: nothing to build, nothing to check
    load_builtin_plugin_for(kind, where);
  }
  return registry().find(kind, where);
}
}  // namespace

void register_trainable(const std::string& kind, TrainableFactory factory,
                        std::function<void(const nlohmann::json&, const std::string&)> check) {
  detail::check_plugin_registers("trainable kind", kind, has_factory(kind));
  registry().update(kind, [&](Entry& e) {
    e.make = std::move(factory);
    e.check = std::move(check);
  });
}

void register_hyperparams_check(const std::string& kind, HyperparamsCheck check) {
  detail::check_plugin_registers("trainable kind", kind, has_factory(kind));
  registry().update(kind, [&](Entry& e) { e.check_h = std::move(check); });
}

void check_trainable_hyperparams(const std::string& kind, const Hyperparams& h, const std::string& where) {
  const Entry e = find(kind, where);
  if (!e.check_h) return;
  try {
    e.check_h(h);
  } catch (const ConfigError& err) {
    throw ConfigError(where, "the '" + kind + "' trainable cannot take " + to_string(h) + ": " + err.what());
  }
}

std::unique_ptr<Trainable> make_trainable(const std::string& kind, const TrainableContext& ctx) {
  const Entry e = find(kind, "trainable.kind");
  if (!e.make) throw Error("the trainable kind '" + kind + "' is not loaded in this command");
  return e.make(ctx);
}

void check_trainable_options(const std::string& kind, const nlohmann::json& options, const std::string& where) {
  const Entry e = find(kind, where + ".kind");
  if (e.check) e.check(options, where);
}

std::vector<std::string> trainable_kinds() {
  register_builtin_trainables();
  return registry().names();
}

}  // namespace pbt
