// A structure-aware fuzzer of the config reader (issue #14). Every example config, mutated
// the ways a hand-edited or corrupted file goes wrong, goes through what `pbt create` runs
// on a config (parse_config, then the members' initial h). Each case must parse or be
// refused with pbt::ConfigError: any other exception fails the test, a crash kills it.
// Seeded, so a failure repeats; PBT_FUZZ_CASES (default 10000) and PBT_FUZZ_SEED for soaks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include "pbt/config.hpp"
#include "pbt/error.hpp"

using namespace pbt;

namespace {

const char* kToy = R"(name = "t"
seed = 3
population = 4
[trainable]
kind = "toy"
sleep_ms = 15
[budget]
steps = 20
target_score = 1.19
[ready]
interval = 4
min_step = 2
eval_every = 1
[exploit]
strategy = "ttest"
alpha = 0.1
window = 5
[explore]
strategy = "perturb"
factors = [0.8, 1.2]
[space.h0]
low = 0.0
high = 1.0
[space.h1]
type = "float"
low = 1e-3
high = 1.0
log = true
[space.k]
type = "int"
low = 1
high = 9
[space.c]
type = "categorical"
choices = ["a", "b"]
[[initial]]
h0 = 0.5
k = 3
[workers]
count = 2
lease_seconds = 2.5
max_failures = 2
)";

std::vector<std::string> seed_configs() {
  std::vector<std::string> out = {kToy};
  for (const char* sub : {"/examples", "/examples/python"})
    for (const auto& e : std::filesystem::directory_iterator(std::string(PBT_SOURCE_DIR) + sub))
      if (e.path().extension() == ".toml") {
        std::ifstream in(e.path());
        std::stringstream s;
        s << in.rdbuf();
        out.push_back(s.str());
      }
  return out;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

class Mutator {
 public:
  explicit Mutator(std::uint64_t seed) : rng_(seed) {}

  std::string mutate(const std::string& text, const std::vector<std::string>& keys) {
    std::vector<std::string> lines = split_lines(text);
    if (lines.empty()) lines.push_back("");
    const int kind = pick(14);
    const std::size_t i = pick(lines.size()), j = pick(lines.size());
    switch (kind) {
      case 0: lines.erase(lines.begin() + i); break;             // delete a line
      case 1: lines.insert(lines.begin() + i, lines[i]); break;  // duplicate (duplicate keys)
      case 2: std::swap(lines[i], lines[j]); break;              // swap two lines
      case 3:                                                    // change a value
      case 4: {
        const auto eq = lines[i].find('=');
        if (eq == std::string::npos) lines[i] += " = " + value();
        else lines[i] = lines[i].substr(0, eq + 1) + " " + value();
        break;
      }
      case 5:
        lines.insert(lines.begin() + i, keys[pick(keys.size())] + " = " + value());
        break;                                                 // key in a wrong place
      case 6: lines.insert(lines.begin() + i, deep()); break;  // deep nesting
      case 7: return text.substr(0, pick(text.size() + 1));    // truncation
      case 8: {                                                // random bytes
        std::string t = text;
        const int n = 1 + static_cast<int>(pick(8));
        for (int k = 0; k < n && !t.empty(); ++k) t[pick(t.size())] = static_cast<char>(pick(256));
        return t;
      }
      case 9: {  // unicode, valid or not
        static const std::vector<std::string> u = {
            "é",      "\xF0\x9F\x98\x80",  "\xC3\x28", "\xE2\x80\xAE", "\xFF\xFE", "\xED\xA0\x80", "\xEF\xBB\xBF",
            "\u00A0", std::string(1, '\0')};
        std::string& l = lines[i];
        l.insert(pick(l.size() + 1), u[pick(u.size())]);
        break;
      }
      case 10: {  // a header anywhere
        static const std::vector<std::string> h = {
            "[space]",     "[[initial]]",     "[space.h0]", "[workers]", "[budget]",   "[trainable]", "[[space]]",
            "[exploit.x]", "[space.\"a.b\"]", "[store]",    "[ready]",   "[[budget]]", "[]",          "[ space . h9 ]"};
        lines.insert(lines.begin() + i, h[pick(h.size())]);
        break;
      }
      case 11: {  // a table becomes a value
        const auto& l = lines[i];
        if (!l.empty() && l[0] == '[') {
          std::string name = l.substr(l.find_first_not_of('['));
          name = name.substr(0, name.find(']'));
          lines[i] = name + " = " + value();
        } else {
          lines[i] = "[" + l + "]";
        }
        break;
      }
      case 12: lines.insert(lines.begin() + i, "s = \"" + std::string(pick(200000), 'x') + "\""); break;  // long
      case 13: lines[i] = keys[pick(keys.size())] + " = " + lines[j]; break;  // a line as another's value
    }
    return join_lines(lines);
  }

  std::size_t pick(std::size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }

 private:
  std::string value() {
    static const std::vector<std::string> v = {"9223372036854775807",
                                               "-9223372036854775808",
                                               "4294967298",
                                               "2147483648",
                                               "-1",
                                               "0",
                                               "-0.0",
                                               "1e308",
                                               "-1e308",
                                               "1e-320",
                                               "nan",
                                               "inf",
                                               "-inf",
                                               "+inf",
                                               "\"\"",
                                               "\"x\"",
                                               "[]",
                                               "[[]]",
                                               "{}",
                                               "[nan, inf]",
                                               "[1, \"a\"]",
                                               "true",
                                               "1979-05-27T07:32:00Z",
                                               "07:32:00",
                                               "1979-05-27",
                                               "0.5",
                                               "3",
                                               "1e19",
                                               "-1e19",
                                               "\"toy\"",
                                               "\"none\"",
                                               "\"..\"",
                                               "\"int\"",
                                               "\"categorical\"",
                                               "[\"a\", \"a\"]",
                                               "{ a = 1 }",
                                               "0x7fffffff",
                                               "99999999999999999999",
                                               "'lit'",
                                               "\"\"\"multi\nline\"\"\"",
                                               "[0.9]",
                                               "[0.9, 0.9, 0.9]",
                                               "{start = inf}",
                                               "\"\\u0000\"",
                                               "1_000_000",
                                               "0.0"};
    return v[pick(v.size())];
  }
  std::string deep() {
    // Mostly around the limit of 64 levels; now and then far beyond (a stack overflow once).
    const std::size_t n = 1 + (pick(20) == 0 ? pick(100000) : pick(200));
    std::string s;
    switch (pick(4)) {
      case 0: {  // a dotted key
        s = "a";
        for (std::size_t k = 0; k < n; ++k) s += ".a";
        return s + " = 1";
      }
      case 1: {  // a header
        s = "[t";
        for (std::size_t k = 0; k < n; ++k) s += ".t";
        return s + "]";
      }
      case 2:  // arrays
        return "x = " + std::string(n, '[') + "1" + std::string(n, ']');
      default: {  // inline tables
        s = "y = ";
        for (std::size_t k = 0; k < n; ++k) s += "{a = ";
        s += "1";
        for (std::size_t k = 0; k < n; ++k) s += "}";
        return s;
      }
    }
  }
  std::mt19937_64 rng_;
};

std::uint64_t env_number(const char* name, std::uint64_t def) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : def;
}

}  // namespace

TEST(ConfigFuzz, EveryMutatedConfigParsesOrIsAConfigError) {
  const std::uint64_t cases = env_number("PBT_FUZZ_CASES", 10000);
  const std::uint64_t seed = env_number("PBT_FUZZ_SEED", 14);
  const std::vector<std::string> seeds = seed_configs();
  ASSERT_GE(seeds.size(), 8u);
  // Keys as they appear in the examples, to put in the wrong places.
  std::vector<std::string> keys;
  for (const auto& s : seeds)
    for (const auto& l : split_lines(s)) {
      const auto eq = l.find('=');
      if (eq != std::string::npos && l[0] != '#' && l[0] != ' ')
        keys.push_back(l.substr(0, l.find_last_not_of(' ', eq - 1) + 1));
    }
  ASSERT_FALSE(keys.empty());

  Mutator m(seed);
  std::uint64_t parsed = 0, refused = 0, other = 0;
  for (std::uint64_t n = 0; n < cases; ++n) {
    std::string text = seeds[n % seeds.size()];
    const std::size_t rounds = 1 + m.pick(3);
    for (std::size_t r = 0; r < rounds; ++r) text = m.mutate(text, keys);
    try {
      ExperimentConfig c = parse_config(text, "fuzz.toml");
      initial_hyperparams(c);  // what create does next: sample every member's h
      ++parsed;
    } catch (const ConfigError&) {
      ++refused;
    } catch (const std::exception& e) {
      ++other;
      if (other <= 5)
        ADD_FAILURE() << "case " << n << " (seed " << seed << "): " << typeid(e).name() << ": " << e.what()
                      << "\n--- config (first 2000 bytes) ---\n"
                      << text.substr(0, 2000);
    }
  }
  std::cout << "config fuzz: " << cases << " cases (seed " << seed << "): " << parsed << " parsed, " << refused
            << " refused with ConfigError, " << other << " other exceptions\n";
  EXPECT_EQ(other, 0u);
  EXPECT_GT(parsed, cases / 200);  // the mutations leave some configs valid
  EXPECT_GT(refused, cases / 2);   // and most not
}
