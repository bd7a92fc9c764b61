#pragma once
// Text of store URIs, shared by the SQLite and PostgreSQL forms.
#include <string>
#include <vector>

namespace pbt {

// "%2F" -> "/" (a '%' not followed by two hex digits stays as it is).
std::string percent_decode(const std::string& s);

// One parameter of a URI's query: "key=value" between '&'s.
struct QueryParam {
  std::string key;
  std::string value;  // percent-decoded; "" when there is no '='
  std::string text;   // the part as written, for passing it on unchanged
};
// The parameters of `query` (the text after '?'), in order; empty parts are skipped.
std::vector<QueryParam> query_params(const std::string& query);

}  // namespace pbt
