#pragma once
// The data of the GAN domain: mixtures of isotropic 2-D Gaussians with equal weights (the
// mode-collapse benchmarks: a ring of 8, a 5x5 grid of 25), and the reported scores
// computed exactly from the mixture. Plain C++: no LibTorch here.
#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace pbt::gan {

using Point = std::array<double, 2>;

struct Mixture {
  std::string name;          // "ring" or "grid"
  std::vector<Point> means;  // one per mode (component)
  double std = 0;            // every component's standard deviation, per coordinate
  int modes() const { return static_cast<int>(means.size()); }
  // A key naming the mixture exactly (for caches).
  std::string key() const;
};

// `modes` Gaussians evenly spaced on a circle of `radius`.
Mixture make_ring(int modes, double radius, double std);
// side x side Gaussians on a square grid with `spacing` between neighbours, centred at 0.
Mixture make_grid(int side, double spacing, double std);

// n points drawn from the mixture; `labels` (if given) receives each point's component.
std::vector<Point> sample(const Mixture& m, std::size_t n, std::mt19937_64& rng, std::vector<int>* labels = nullptr);
// n points all drawn from the components listed (equally often, in turn).
std::vector<Point> sample_modes(const Mixture& m, const std::vector<int>& components, std::size_t n,
                                std::mt19937_64& rng);

// log p(y|x) under the true mixture for every point: rows of m.modes() values.
std::vector<std::vector<double>> true_log_posterior(const Mixture& m, const std::vector<Point>& x);

// The data's box: the means' bounding box widened by half its size on each side (at least
// 6 std wide). The selection classifier's "not data" points are drawn uniformly from it.
struct Box {
  double lo[2], hi[2];
  double area() const { return (hi[0] - lo[0]) * (hi[1] - lo[1]); }
};
Box data_box(const Mixture& m);

// log p(y|x) with a "not data" outcome, rows of m.modes() values: the Bayes posterior of the
// model the background classifier is trained on (the mixture, or with the same prior a flat
// density at the level of the uniform over data_box, unbounded so far-away points are not
// data either), with the "not data" probability shared evenly by the modes. A point off the
// data is then unsure of its class, as an image classifier is about an image unlike its
// data; the boundary lies about 3.5 std from a mode on the ring and grid.
std::vector<std::vector<double>> strict_log_posterior(const Mixture& m, const std::vector<Point>& x);

// exp(E_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x) over the points, from log p(y|x)
// rows. Between 1 (every point has the same posterior) and the number of classes.
double inception_score(const std::vector<std::vector<double>>& log_posterior);

// The reported figures of a set of generated points.
struct MixtureScores {
  double inception = 1;         // exact IS, from the true posterior (max: the number of modes)
  double strict_inception = 1;  // exact IS from strict_log_posterior (off-data points: unsure)
  int modes_covered = 0;        // modes holding >= cover_fraction * n / modes high-quality points
  double high_quality = 0;      // fraction of points within 3 std of their nearest mode
  std::size_t non_finite = 0;   // points with a NaN or infinite coordinate (never high quality)
};
// A mode is covered when at least `cover_fraction` of its fair share (n / modes) of the
// points are high-quality points nearest to it (0.2: PacGAN's "20 of 2,500 on 25 modes").
MixtureScores score_points(const Mixture& m, const std::vector<Point>& x, double cover_fraction = 0.2);

}  // namespace pbt::gan
