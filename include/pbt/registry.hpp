#pragma once
// One plug-in mechanism: what the config chooses by name (a trainable kind, an exploit or
// explore strategy) is looked up in a Registry of entries registered under that name.
// Built-ins register through it like anything out of tree (see pbt/strategy.hpp and
// pbt/trainable.hpp for the registration functions and a worked example).
#include <algorithm>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pbt/error.hpp"

namespace pbt {

template <class Entry>
class Registry {
 public:
  // How the names are listed in an unknown-name error and by names().
  enum class Listed { in_registration_order, alphabetically };

  // `what` names an entry in errors: "exploit strategy" -> "unknown exploit strategy 'x'".
  // `builtins` are registered first, in their order.
  explicit Registry(std::string what, std::vector<std::pair<std::string, Entry>> builtins = {},
                    Listed listed = Listed::in_registration_order)
      : what_(std::move(what)), listed_(listed), entries_(std::move(builtins)) {}

  // Registers `name`, or replaces what it named (a built-in included).
  void add(const std::string& name, Entry entry) {
    update(name, [&](Entry& e) { e = std::move(entry); });
  }

  // Changes the entry under `name` in place, a default-constructed one if it is new.
  template <class Change>
  void update(const std::string& name, Change&& change) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) { return e.first == name; });
    if (it == entries_.end()) it = entries_.insert(entries_.end(), {name, Entry{}});
    change(it->second);
  }

  // The entry under `name` (a copy: it may be replaced meanwhile), or a ConfigError at
  // `where` that lists what is registered: "unknown exploit strategy 'x' (known: a, b)".
  Entry find(const std::string& name, const std::string& where) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& e : entries_)
      if (e.first == name) return e.second;
    std::string known;
    for (const auto& n : names_locked()) known += (known.empty() ? "" : ", ") + n;
    throw ConfigError(where, "unknown " + what_ + " '" + name + "' (known: " + known + ")");
  }

  // The entry under `name`, if there is one.
  std::optional<Entry> get(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& e : entries_)
      if (e.first == name) return e.second;
    return std::nullopt;
  }

  std::vector<std::string> names() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return names_locked();
  }

 private:
  std::vector<std::string> names_locked() const {
    std::vector<std::string> out;
    for (const auto& e : entries_) out.push_back(e.first);
    if (listed_ == Listed::alphabetically) std::sort(out.begin(), out.end());
    return out;
  }

  const std::string what_;
  const Listed listed_;
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, Entry>> entries_;  // in registration order
};

}  // namespace pbt
