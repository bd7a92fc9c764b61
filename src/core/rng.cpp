#include "pbt/rng.hpp"

#include <cmath>

namespace pbt {

namespace {
// splitmix64 finaliser: mixes each input in so nearby seeds give unrelated streams.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t member, std::uint64_t step, std::uint64_t purpose) {
  return mix(mix(mix(mix(seed) ^ member) ^ step) ^ purpose);
}

double standard_normal(Rng& rng) {
  double u1 = uniform01(rng);
  double u2 = uniform01(rng);
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

std::uint64_t uniform_index(Rng& rng, std::uint64_t n) {
  // Rejection sampling keeps it unbiased and platform-independent.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t x;
  do x = rng();
  while (x >= limit);
  return x % n;
}

}  // namespace pbt
