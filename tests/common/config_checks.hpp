#pragma once
// What the config tests ask of parse_config: the error a text gives, and a good text with
// one piece changed.
#include <gtest/gtest.h>

#include <string>

#include "pbt/config.hpp"
#include "pbt/error.hpp"
#include "common/toy_config.hpp"

namespace pbt::test {

// The text the tests edit (good_with): keep what they look for in it.
inline const std::string kGood = ToyConfig("t").seed(3);

// kGood with `find` (which must be in it) replaced.
inline std::string good_with(const std::string& find, const std::string& replace) {
  std::string s = kGood;
  auto pos = s.find(find);
  EXPECT_NE(pos, std::string::npos) << find;
  return s.replace(pos, find.size(), replace);
}

// The ConfigError message for `text`, read as "exp.toml", or "" when it parses.
inline std::string error_of(const std::string& text) {
  try {
    parse_config(text, "exp.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace pbt::test
