#pragma once
// SHA-256 fed in pieces: checkpoints are hashed as they stream.
#include <cstddef>
#include <memory>
#include <string>

namespace pbt {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(const char* data, std::size_t n);
  // Lowercase hex of the digest; the object is spent afterwards.
  std::string hex();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

}  // namespace pbt
