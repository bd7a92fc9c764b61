#pragma once
// The GAN trainable (kind "gan"): an MLP generator and discriminator on a 2-D mixture of
// Gaussians, each with its own Adam and its own learning rate from h (lr_g, lr_d).
// eval returns the selection score, an Inception-score analogue whose p(y|x) comes from a
// small classifier trained on real samples (as the paper's "CIFAR-IS"); the reported
// figures (strict and components-only exact IS from the true posterior, modes covered,
// high-quality fraction) go to the score's metrics. docs/gan.md lists every option.
// No LibTorch in this header.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/trainable.hpp"
#include "trainables/torch/gan/mixture.hpp"

namespace pbt::gan {

struct GanOptions {
  Mixture mixture;
  std::string loss = "nonsaturating";  // nonsaturating | minimax | hinge
  int d_steps = 1;                     // discriminator updates per generator update
  double lr_g = 2e-4, lr_d = 2e-4;     // used when h has no lr_g / lr_d
  double beta1 = 0.5, beta2 = 0.999;   // Adam, both networks
  int latent = 8;                      // dimension of the generator's Gaussian input
  int hidden = 64;                     // units per hidden layer
  int layers = 2;                      // hidden layers, in each network
  int batch = 64;                      // real and generated samples per update
  bool background_class = false;       // the selection classifier also has a "not data" class
  int eval_samples = 2500;             // generated samples scored by eval
  double cover_fraction = 0.2;         // see score_points
  std::string device = "cpu";
};

// Reads and checks the [trainable] options; errors name the field ("where.loss").
GanOptions read_options(const nlohmann::json& j, const std::string& where);

std::unique_ptr<Trainable> make_trainable(const TrainableContext& ctx);
// The h a GAN can take (lr_g, lr_d > 0), checked when the config is read.
void check_hyperparams(const Hyperparams& h);

// log p(y|x) from the selection classifier of this mixture (trained once per process and
// mixture, with a fixed seed, on real samples; never on generated ones). `fresh`: train a
// new one instead of the process's (for tests). `background`: the classifier with the extra
// "not data" class, whose probability is spread evenly over the modes (GanOptions::background_class).
std::vector<std::vector<double>> classifier_log_posterior(const Mixture& m, const std::vector<Point>& x,
                                                          bool fresh = false, bool background = false);

}  // namespace pbt::gan
