// The config file as text: its size and nesting bounded, then TOML parsed into JSON, the
// form every reader of options takes.
#include "core/config_text.hpp"

#include <vector>

#include <toml++/toml.h>

#include "pbt/config.hpp"
#include "pbt/error.hpp"

namespace pbt {

namespace {

nlohmann::json to_json_node(const toml::node& n) {
  if (auto t = n.as_table()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : *t) j[std::string(k.str())] = to_json_node(v);
    return j;
  }
  if (auto a = n.as_array()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& v : *a) j.push_back(to_json_node(v));
    return j;
  }
  if (auto v = n.as_integer()) return v->get();
  if (auto v = n.as_floating_point()) return v->get();
  if (auto v = n.as_boolean()) return v->get();
  if (auto v = n.as_string()) return v->get();
  return nullptr;  // dates and times: no option takes them; the option's check refuses null
}

// Every config reads through recursion, toml++'s and ours, one call per level of nesting, so a
// file nested ~50,000 levels deep (a 100 KB dotted key) would overflow the stack. This cheap
// scan bounds the nesting before anything parses: the dots of the current [table] header,
// plus the dots of the key being read (a dot in a value, as in 1.5, counts too: harmless),
// plus the open arrays and inline tables. Strings and comments are skipped.
void check_nesting(const std::string& text, const std::string& origin) {
  int line = 1;
  int header = 0;          // levels of the current [table] or [[array of tables]]
  int dots = 0;            // dots since the statement (or array element) began
  std::vector<int> open;   // `dots` when each open [ or { began
  bool line_start = true;  // only blanks so far on this line, outside any bracket
  const std::size_t n = text.size();
  auto too_deep = [&](int depth) {
    if (depth > kMaxConfigDepth)
      throw ConfigError(origin + ":" + std::to_string(line),
                        "nested more than " + std::to_string(kMaxConfigDepth) +
                            " levels deep (tables, dotted keys, arrays and inline tables together)");
  };
  // Skips the string that starts at i; returns the index of its last character.
  auto skip_string = [&](std::size_t i) {
    const char q = text[i];
    const bool multi = i + 2 < n && text[i + 1] == q && text[i + 2] == q;
    std::size_t j = i + (multi ? 3 : 1);
    for (; j < n; ++j) {
      if (text[j] == '\n') {
        if (!multi) return j - 1;  // unterminated: the parser will say so
        ++line;
      }
      if (q == '"' && text[j] == '\\') {
        if (j + 1 < n && text[j + 1] == '\n') {
          if (!multi) return j;
          ++line;
        }
        ++j;
        continue;
      }
      if (text[j] == q && (!multi || (j + 2 < n && text[j + 1] == q && text[j + 2] == q))) {
        if (!multi) return j;
        j += 2;
        while (j + 1 < n && text[j + 1] == q) ++j;  // up to two quotes may end the content
        return j;
      }
    }
    return n - 1;
  };
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      if (open.empty()) {
        dots = 0;
        line_start = true;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') continue;
    if (c == '#') {
      while (i + 1 < n && text[i + 1] != '\n') ++i;
      continue;
    }
    if (c == '"' || c == '\'') {
      i = skip_string(i);
      line_start = false;
      continue;
    }
    if (line_start && c == '[') {  // a table header: its dots set the level of what follows
      line_start = false;
      header = (i + 1 < n && text[i + 1] == '[') ? 2 : 1;
      for (++i; i < n && text[i] != ']' && text[i] != '\n'; ++i) {
        if (text[i] == '"' || text[i] == '\'') i = skip_string(i);
        else if (text[i] == '.') too_deep(++header);
      }
      if (i < n && text[i] == '\n') --i;  // unterminated: the newline ends the line as usual
      continue;
    }
    line_start = false;
    if (c == '.') {
      too_deep(header + ++dots + static_cast<int>(open.size()));
    } else if (c == '[' || c == '{') {
      open.push_back(dots);
      too_deep(header + dots + static_cast<int>(open.size()));
    } else if (c == ']' || c == '}') {
      if (!open.empty()) {
        dots = open.back();
        open.pop_back();
      }
    } else if (c == ',') {
      if (!open.empty()) dots = open.back();  // the next element or key starts afresh
    }
  }
}

}  // namespace

nlohmann::json read_toml(const std::string& text, const std::string& origin) {
  if (text.size() > kMaxConfigBytes)
    throw ConfigError(origin, "the config is " + std::to_string(text.size()) + " bytes; at most " +
                                  std::to_string(kMaxConfigBytes) + " (1 MiB) are read");
  check_nesting(text, origin);
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    throw ConfigError(origin + ":" + std::to_string(at.line) + ":" + std::to_string(at.column),
                      std::string(e.description()));
  }
  return to_json_node(root);
}

}  // namespace pbt
