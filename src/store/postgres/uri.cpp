// PostgreSQL store URIs (see uri.hpp).
#include "store/postgres/uri.hpp"

#include <cctype>
#include <cstdlib>
#include <map>
#include <set>

#include "pbt/error.hpp"
#include "store/uri_text.hpp"

namespace pbt::pg {

namespace {

struct SplitUri {
  std::string libpq;
  std::map<std::string, std::string> own;
};

SplitUri split_uri(const std::string& uri) {
  static const std::set<std::string> kOwn = {"checkpoint_dir", "retry_seconds", "schema"};
  SplitUri out;
  const auto q = uri.find('?');
  if (q == std::string::npos) {
    out.libpq = uri;
    return out;
  }
  std::string kept;
  std::string query = uri.substr(q + 1);
  std::size_t start = 0;
  while (start <= query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string part = query.substr(start, end - start);
    start = end + 1;
    if (part.empty()) continue;
    const auto eq = part.find('=');
    const std::string key = part.substr(0, eq);
    if (kOwn.count(key)) {
      out.own[key] = eq == std::string::npos ? "" : percent_decode(part.substr(eq + 1));
    } else {
      kept += (kept.empty() ? "" : "&") + part;
    }
  }
  out.libpq = uri.substr(0, q) + (kept.empty() ? "" : "?" + kept);
  return out;
}

}  // namespace

std::string store_text(const std::string& name) { return "PostgreSQL store '" + name + "'"; }

Target parse_uri(const std::string& uri, PostgresStore::Options options) {
  Target t;
  t.name = redact_uri(uri);
  SplitUri split = split_uri(uri);
  t.conninfo = split.libpq;
  if (split.own.count("checkpoint_dir")) options.checkpoint_dir = split.own["checkpoint_dir"];
  if (split.own.count("schema")) options.schema = split.own["schema"];
  if (split.own.count("retry_seconds")) {
    const std::string& v = split.own["retry_seconds"];
    char* end = nullptr;
    const double seconds = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(seconds >= 0))
      throw StoreError(store_text(t.name) + ": retry_seconds must be a number of seconds >= 0, not '" + v + "'");
    options.retry_seconds = seconds;
  }
  if (options.schema.empty()) throw StoreError(store_text(t.name) + ": schema must not be empty");
  t.options = options;
  return t;
}

}  // namespace pbt::pg
