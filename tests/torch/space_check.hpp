#pragma once
// Shared by the domains' tests: a config whose [space] the trainable cannot take is refused
// when it is read, naming the space and the hyperparameter.
#include <gtest/gtest.h>

#include <string>

#include "pbt/config.hpp"
#include "pbt/error.hpp"

namespace pbt::test {

// `head`: the config up to [space]; `space`: the [space] tables; `field`: what the message must name.
inline void expect_space_refused(const std::string& head, const std::string& space, const std::string& field) {
  try {
    parse_config(head + space, "exp.toml");
    ADD_FAILURE() << "accepted " << space;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("exp.toml: space"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
  }
}

}  // namespace pbt::test
