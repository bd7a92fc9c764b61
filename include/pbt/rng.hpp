#pragma once
// Random numbers. Every decision draws from a generator seeded by
// (experiment seed, member id, step, purpose), so a decision does not depend on which
// worker process happened to make it, and one worker with a fixed seed replays exactly.
#include <cstdint>
#include <random>

namespace pbt {

using Rng = std::mt19937_64;

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t member, std::uint64_t step, std::uint64_t purpose);

inline Rng make_rng(std::uint64_t seed, std::uint64_t member, std::uint64_t step, std::uint64_t purpose) {
  return Rng(derive_seed(seed, member, step, purpose));
}

// Purposes, so streams drawn for different things never coincide.
enum RngPurpose : std::uint64_t { kInit = 1, kExploit = 2, kExplore = 3, kTrain = 4, kCopy = 5 };

// Uniform double in [0, 1) from an Rng, the same on every platform (unlike
// std::uniform_real_distribution, whose algorithm the standard leaves open).
inline double uniform01(Rng& rng) { return (rng() >> 11) * (1.0 / 9007199254740992.0); }
// Standard normal by Box-Muller on uniform01, for the same reason.
double standard_normal(Rng& rng);
// Uniform integer in [0, n).
std::uint64_t uniform_index(Rng& rng, std::uint64_t n);

}  // namespace pbt
