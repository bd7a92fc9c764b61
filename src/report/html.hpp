#pragma once
// Writing HTML safely: escaping, and a page template filled slot by slot.
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace pbt::report {

// Text for HTML element content or a quoted attribute.
std::string html_escape(std::string_view s);
// JSON that is safe inside <script>: '<', '>', '&' and U+2028/9 are written as \uXXXX.
std::string script_json(const nlohmann::json& j);

// `page` with every {{name}} replaced by slots.at(name), in one pass: what a slot brings
// in is never read for slots again. Throws std::out_of_range for a slot not given.
std::string fill(std::string_view page, const std::map<std::string, std::string>& slots);

}  // namespace pbt::report
