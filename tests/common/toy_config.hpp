#pragma once
// An experiment config for the toy trainable, as the TOML text the tests write: one builder
// instead of the same text pasted into every test. The defaults are a small complete run:
//
//   name = "toy"              [budget] steps = 20        [explore] strategy = "perturb"
//   population = 4            [ready] interval = 4       [space.h0], [space.h1]: 0.0 to 1.0
//   [trainable] kind = "toy"  [exploit] strategy = "truncation"
//
// set() overrides or adds any key by its dotted path ("seed", "trainable.sleep_ms",
// "space.h0.high"), the value written as TOML ("4", "\"weights\"", "[0.8, 1.2]");
// append() adds raw text at the end (an [[initial]] table, another space).
#include <string>
#include <utility>
#include <vector>

namespace pbt::test {

class ToyConfig {
 public:
  explicit ToyConfig(const std::string& name = "toy") {
    set("name", quoted(name));
    set("population", "4");
    set("trainable.kind", quoted("toy"));
    set("budget.steps", "20");
    set("ready.interval", "4");
    set("exploit.strategy", quoted("truncation"));
    set("explore.strategy", quoted("perturb"));
    for (const char* h : {"space.h0", "space.h1"}) {
      set(std::string(h) + ".low", "0.0");
      set(std::string(h) + ".high", "1.0");
    }
  }

  ToyConfig& seed(int s) { return set("seed", std::to_string(s)); }
  ToyConfig& population(int n) { return set("population", std::to_string(n)); }
  ToyConfig& steps(int n) { return set("budget.steps", std::to_string(n)); }
  ToyConfig& sleep_ms(int ms) { return set("trainable.sleep_ms", std::to_string(ms)); }
  ToyConfig& workers(int n) { return set("workers.count", std::to_string(n)); }
  ToyConfig& lease_seconds(const std::string& s) { return set("workers.lease_seconds", s); }
  ToyConfig& store(const std::string& uri) { return set("store.uri", quoted(uri)); }
  // The toy holds its member after `steps` steps while `file` exists (tests pause a run there).
  ToyConfig& pause(int steps, const std::string& file) {
    set("trainable.pause_after", std::to_string(steps));
    return set("trainable.pause_file", quoted(file));
  }

  // The start of the paper's Figure 2: member 0 at h = (1, 0), member 1 at h = (0, 1).
  ToyConfig& figure2_start() { return append("[[initial]]\nh0 = 1.0\nh1 = 0.0\n[[initial]]\nh0 = 0.0\nh1 = 1.0\n"); }

  // Sets `path` ("table.key", or "key" at the top) to `value`, TOML as written.
  ToyConfig& set(const std::string& path, const std::string& value) {
    const auto dot = path.rfind('.');
    const std::string table = dot == std::string::npos ? "" : path.substr(0, dot);
    const std::string key = dot == std::string::npos ? path : path.substr(dot + 1);
    auto& entries = table_(table);
    for (auto& [k, v] : entries)
      if (k == key) {
        v = value;
        return *this;
      }
    entries.emplace_back(key, value);
    return *this;
  }

  ToyConfig& append(const std::string& toml) {
    tail_ += toml;
    return *this;
  }

  std::string text() const {
    std::string out;
    for (const auto& [table, entries] : tables_) {
      if (!table.empty()) out += "[" + table + "]\n";
      for (const auto& [k, v] : entries) out += k + " = " + v + "\n";
    }
    return out + tail_;
  }
  operator std::string() const { return text(); }

  static std::string quoted(const std::string& s) { return "\"" + s + "\""; }

 private:
  using Entries = std::vector<std::pair<std::string, std::string>>;
  Entries& table_(const std::string& name) {
    for (auto& [n, e] : tables_)
      if (n == name) return e;
    tables_.emplace_back(name, Entries{});
    return tables_.back().second;
  }

  std::vector<std::pair<std::string, Entries>> tables_;  // in order; "" is the top level
  std::string tail_;
};

}  // namespace pbt::test
