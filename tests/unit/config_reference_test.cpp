// README.md's "Config reference" is config_reference(): the table rendered from the
// parser's declarations, so it lists every key the parser reads, with its default and check.
// When a setting changes, this test fails and prints the text to put in README.md.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "pbt/config.hpp"
#include "pbt/error.hpp"

using namespace pbt;

namespace {

const char* kBegin = "<!-- config-reference: begin";
const char* kEnd = "<!-- config-reference: end -->";

std::string readme_reference() {
  std::ifstream in(std::string(PBT_SOURCE_DIR) + "/README.md");
  std::stringstream s;
  s << in.rdbuf();
  const std::string text = s.str();
  const auto begin = text.find(kBegin);
  const auto end = text.find(kEnd);
  if (begin == std::string::npos || end == std::string::npos || end < begin) return "(no markers in README.md)";
  const auto from = text.find('\n', begin) + 1;
  return text.substr(from, end - from);
}

// Only the required keys, as dotted keys, so others can be added in any order.
const char* kRequired = R"(name = "t"
population = 4
trainable.kind = "toy"
budget.steps = 20
ready.interval = 4
space.h0.low = 0.0
space.h0.high = 1.0
space.h1.low = 0.0
space.h1.high = 1.0
)";

// What the parser made of a config, but the text it was given.
nlohmann::json summary(const ExperimentConfig& c) {
  return {{"name", c.name},
          {"seed", c.seed},
          {"population", c.population},
          {"trainable", c.trainable},
          {"options", c.trainable_options},
          {"steps", c.budget_steps},
          {"target", c.target_score.has_value()},
          {"interval", c.ready.interval},
          {"min_step", c.ready.min_step},
          {"eval_every", c.eval_every},
          {"exploit", c.exploit},
          {"exploit_options", c.exploit_options},
          {"copy", c.copy},
          {"window", c.window},
          {"explore", c.explore},
          {"explore_options", c.explore_options},
          {"always", c.explore_always},
          {"workers", c.workers},
          {"lease", c.lease_seconds},
          {"max_failures", c.max_failures},
          {"store", c.store}};
}

}  // namespace

TEST(ConfigReference, ReadmeIsTheReferenceOfTheDeclarations) {
  EXPECT_EQ(readme_reference(), config_reference())
      << "README.md's Config reference differs from the declarations (src/core/config_settings.cpp). "
         "Between its markers, put:\n"
      << config_reference();
}

// Every key the reference gives a default is read by the parser, and giving it that default
// changes nothing: the reference's defaults are the parser's.
TEST(ConfigReference, EveryDefaultInTheReferenceIsTheParsers) {
  const std::string reference = config_reference();
  const std::regex row(R"(\| `([a-z_.]+)` \| [^|]* \| `([^`]*)` \|)");
  std::string with_defaults = kRequired;
  int keys = 0;
  for (std::sregex_iterator it(reference.begin(), reference.end(), row), end; it != end; ++it) {
    const std::string key = (*it)[1];
    if (key.rfind("space.", 0) == 0) continue;  // per hyperparameter: below
    with_defaults += key + " = " + std::string((*it)[2]) + "\n";
    ++keys;
  }
  EXPECT_GE(keys, 12);
  const ExperimentConfig plain = parse_config(kRequired, "exp.toml");
  ExperimentConfig given;
  ASSERT_NO_THROW(given = parse_config(with_defaults, "exp.toml")) << with_defaults;
  EXPECT_EQ(summary(given), summary(plain)) << with_defaults;

  // A hyperparameter's: a float's and a categorical's defaults given, the same space.
  const std::string space = std::string(kRequired) + "space.c = { type = \"categorical\", choices = [\"a\", \"b\"] }\n";
  const std::string space_given = std::string(kRequired) +
                                  "space.h0.type = \"float\"\nspace.h0.log = false\n"
                                  "space.c = { type = \"categorical\", choices = [\"a\", \"b\"], ordered = false }\n";
  const auto params = [](const ExperimentConfig& c) {
    nlohmann::json j;
    for (const auto& p : c.space.params())
      j.push_back({p.name, static_cast<int>(p.kind), p.low, p.high, p.log, p.choices, p.ordered});
    return j;
  };
  EXPECT_EQ(params(parse_config(space_given, "exp.toml")), params(parse_config(space, "exp.toml")));
  for (const char* key : {"type", "log", "ordered"})
    EXPECT_NE(reference.find("| `space.NAME." + std::string(key) + "` |"), std::string::npos) << key;
}
