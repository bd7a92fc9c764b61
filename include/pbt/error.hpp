#pragma once
// One exception family for the whole library. Messages name the file, field or
// value at fault, so a user can act on them without reading code.
#include <stdexcept>
#include <string>

namespace pbt {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A config that cannot be run. `where` is "file: field" (or just the file).
class ConfigError : public Error {
 public:
  ConfigError(const std::string& where, const std::string& reason) : Error(where + ": " + reason) {}
};

// This worker no longer holds the member it was working on (its lease expired and
// another worker took it, or the version moved on). The work is dropped, not merged.
class LeaseLost : public Error {
 public:
  using Error::Error;
};

// A checkpoint that is missing or whose bytes do not match their hash.
class CheckpointError : public Error {
 public:
  using Error::Error;
};

// The store could not be reached or answered with an error it could not retry past.
class StoreError : public Error {
 public:
  using Error::Error;
};

// A StoreError that may go away by itself (the store is busy or unreachable, after the
// store's own retries): the same work, tried again later, can succeed. Any other
// StoreError is taken as permanent: repeating the same write would fail the same way.
class StoreUnavailable : public StoreError {
 public:
  using StoreError::StoreError;
};

}  // namespace pbt
