#pragma once
// Text of store URIs, shared by the SQLite and PostgreSQL forms.
#include <string>

namespace pbt {

// "%2F" -> "/" (a '%' not followed by two hex digits stays as it is).
std::string percent_decode(const std::string& s);

}  // namespace pbt
