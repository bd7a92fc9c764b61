#pragma once
// Helpers shared by the store tests: temp directories, populations, publications.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "pbt/error.hpp"
#include "pbt/store.hpp"

namespace pbt::test {

// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pbt-store-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline Hyperparams h_for(int i) {
  return Hyperparams{
      {"lr", 0.1 / (i + 3)}, {"layers", std::int64_t{i + 1}}, {"act", std::string(i % 2 ? "tanh" : "relu")}};
}

// Members 0..n-1 with the given steps (0 when not given) and distinct h.
inline std::vector<MemberState> members(int n, std::vector<std::int64_t> steps = {}) {
  std::vector<MemberState> out;
  for (int i = 0; i < n; ++i) {
    MemberState m;
    m.id = i;
    m.step = i < static_cast<int>(steps.size()) ? steps[i] : 0;
    m.h = h_for(i);
    out.push_back(m);
  }
  return out;
}

inline ExperimentInfo info(const std::string& name, int population) {
  ExperimentInfo i;
  i.name = name;
  i.config = "[experiment]\nname = \"" + name + "\"\n";
  i.origin = "/tmp/" + name + ".toml";
  i.population = population;
  return i;
}

inline Publication publication(std::int64_t step, double score, const std::string& bytes) {
  Publication p;
  p.step = step;
  p.last_ready_step = step;
  p.score = score;
  p.samples = {score};
  p.h = h_for(0);
  p.checkpoint_bytes = bytes;
  return p;
}

// The message of the E that f throws; a test failure (and "") when it throws nothing or another type.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no exception thrown";
  return "";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace pbt::test
