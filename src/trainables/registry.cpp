#include "pbt/registry.hpp"
#include "pbt/error.hpp"
#include "pbt/trainable.hpp"

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
Entry find(const std::string& kind, const std::string& where) {
  register_builtin_trainables();
  return registry().find(kind, where);
}
}  // namespace

void register_trainable(const std::string& kind, TrainableFactory factory,
                        std::function<void(const nlohmann::json&, const std::string&)> check) {
  registry().update(kind, [&](Entry& e) {
    e.make = std::move(factory);
    e.check = std::move(check);
  });
}

void register_hyperparams_check(const std::string& kind, HyperparamsCheck check) {
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
  return find(kind, "trainable.kind").make(ctx);
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
