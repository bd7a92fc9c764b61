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
  for (const QueryParam& p : query_params(uri.substr(q + 1))) {
    if (kOwn.count(p.key)) out.own[p.key] = p.value;
    else kept += (kept.empty() ? "" : "&") + p.text;
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
