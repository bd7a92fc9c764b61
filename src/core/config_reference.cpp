// The config reference, rendered from the declarations: README.md's "Config reference".
#include <sstream>

#include "core/config_settings.hpp"

namespace pbt {

namespace {

template <class Target>
void render(std::ostringstream& out, const TableSettings<Target>& t) {
  const std::string prefix = t.name.empty() ? "" : t.name + ".";
  for (const auto& s : t.settings) {
    const bool word = s.default_text == "required" || s.default_text == "none";  // else TOML text
    out << "| `" << prefix << s.key << "` | " << s.value << " | "
        << (word ? s.default_text : "`" + s.default_text + "`") << " | " << s.what << " |\n";
  }
  if (!t.other_keys.empty()) out << "| `" << prefix << "*` | | | " << t.other_keys << " |\n";
}

}  // namespace

std::string config_reference() {
  std::ostringstream out;
  out << "| key | value | default | what it is |\n|---|---|---|---|\n";
  for (const auto& t : config_tables()) {
    if (t.name == "space.NAME") render(out, param_table());
    else render(out, t);
  }
  return out.str();
}

}  // namespace pbt
