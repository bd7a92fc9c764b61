// Text of store URIs (see uri_text.hpp).
#include "store/uri_text.hpp"

#include <cctype>

namespace pbt {

std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<QueryParam> query_params(const std::string& query) {
  std::vector<QueryParam> out;
  for (std::size_t start = 0; start <= query.size();) {
    std::size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    std::string part = query.substr(start, end - start);
    start = end + 1;
    if (part.empty()) continue;
    const auto eq = part.find('=');
    QueryParam p;
    p.key = part.substr(0, eq);
    p.value = eq == std::string::npos ? "" : percent_decode(part.substr(eq + 1));
    p.text = std::move(part);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace pbt
