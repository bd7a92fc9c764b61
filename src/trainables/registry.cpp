#include <map>
#include <mutex>

#include "pbt/error.hpp"
#include "pbt/trainable.hpp"

namespace pbt {

namespace {
struct Entry {
  TrainableFactory make;
  std::function<void(const nlohmann::json&, const std::string&)> check;
  HyperparamsCheck check_h;
};
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> r;
  return r;
}
const Entry& find(const std::string& kind, const std::string& where) {
  register_builtin_trainables();
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto it = registry().find(kind);
  if (it == registry().end()) {
    std::string known;
    for (const auto& [k, e] : registry()) known += (known.empty() ? "" : ", ") + k;
    throw ConfigError(where, "unknown trainable kind '" + kind + "' (known: " + known + ")");
  }
  return it->second;
}
}  // namespace

void register_trainable(const std::string& kind, TrainableFactory factory,
                        std::function<void(const nlohmann::json&, const std::string&)> check) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto& e = registry()[kind];
  e.make = std::move(factory);
  e.check = std::move(check);
}

void register_hyperparams_check(const std::string& kind, HyperparamsCheck check) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry()[kind].check_h = std::move(check);
}

void check_trainable_hyperparams(const std::string& kind, const Hyperparams& h, const std::string& where) {
  const Entry& e = find(kind, where);
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

void check_trainable_options(const std::string& kind, const nlohmann::json& options,
                             const std::string& where) {
  const Entry& e = find(kind, where + ".kind");
  if (e.check) e.check(options, where);
}

std::vector<std::string> trainable_kinds() {
  register_builtin_trainables();
  std::lock_guard<std::mutex> lock(registry_mutex());
  std::vector<std::string> out;
  for (const auto& [k, e] : registry()) out.push_back(k);
  return out;
}

}  // namespace pbt
