#pragma once
// What a user implements to put a model under PBT: step, eval, save, load.
// The engine applies h before every interval (so an optimizer's learning rate can be
// changed in place), decides everything else, and never looks inside the model.
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/checkpoint_io.hpp"
#include "pbt/hyperparams.hpp"

namespace pbt {

// The result of eval. `value` is what PBT maximises. `samples`, when given, are the
// raw observations behind it (e.g. the last episodic returns) that the t-test compares;
// without them the t-test compares the member's recent published scores.
struct Score {
  double value = 0;
  std::vector<double> samples;
  nlohmann::json metrics = nlohmann::json::object();  // extra named figures, reported only
};

// A diverged model (an eval, or a sample, that is not finite) is stored with this score:
// it ranks last, so exploit replaces it, and charts and exports leave it out.
constexpr double kDivergedScore = std::numeric_limits<double>::lowest();
// The sentinel, or anything non-finite. Everything at or below -1e300 counts: no real score
// is that low, and a store that rounds the sentinel on its way back still reads as diverged.
inline bool is_diverged(double score) { return !std::isfinite(score) || score <= -1e300; }

// What a trainable learns about the member it is built for.
struct TrainableContext {
  int member = 0;          // member id, 0-based
  std::uint64_t seed = 0;  // derived from (experiment seed, member): for the model's init
  nlohmann::json options;  // the config's [trainable] table, minus `kind`
  // Writes one line to the log of the worker running this member, tagged with the member
  // (e.g. an external trainer's stderr). Never empty when the engine builds the trainable.
  std::function<void(const std::string&)> log;
  // Where checkpoint files may be written so that the store adopts them without a copy (a
  // directory on the store's filesystem; empty: anywhere, e.g. $TMPDIR).
  std::string scratch_dir;
};

// What a trainable learns when the checkpoint it was just given is another member's: an
// exploit (or a recover) copied the donor's model into this member. From here on the model
// is a new member's, so it should draw its randomness (data order, noise, exploration)
// from `seed` instead of replaying the donor's stream: two members that copy one donor
// must not become one model for good.
struct Copied {
  int donor = -1;               // the member whose checkpoint it was
  std::int64_t donor_step = 0;  // the donor's step when it published it
  std::uint64_t seed = 0;       // fresh, drawn from this member's stream (same every replay)
};

class Trainable {
 public:
  virtual ~Trainable() = default;
  // Called before every interval and after every explore, with the h in force.
  virtual void apply(const Hyperparams& h) = 0;
  // Asked right after every apply(): the h the trainable actually put in force, when it is
  // not the h it was given (it rounded a value, clamped one, or enforced a rule between two:
  // batch >= 2 x minibatch). The engine checks it against [space] (every hyperparameter, of
  // its type, within its bounds: else the interval fails naming the value) and records it as
  // the member's h: published, in this interval's exploit/explore event, in status and best.
  // Default: nothing, h in force as given.
  virtual std::optional<Hyperparams> accepted() const { return std::nullopt; }
  // Train for n steps under the last applied h.
  virtual void step(std::int64_t n) = 0;
  // Score the model on the objective we care about (higher is better).
  virtual Score eval() = 0;
  // The whole training state (weights, optimizer, data position) in one blob.
  virtual void save(CheckpointWriter& out) const = 0;
  virtual void load(CheckpointReader& in) = 0;
  // Called right after load() when the checkpoint was another member's (see Copied).
  // Trainables without randomness of their own may ignore it.
  virtual void copied(const Copied& from) { (void)from; }
  // Asked when the worker moves on to another member (with more members than workers, at
  // almost every interval): return true when this object now serves `ctx.member` as a newly
  // built trainable would, and the engine then loads that member's checkpoint, if it has
  // one. The default, false, has the engine build a new trainable; a trainable that is
  // costly to start (an external trainer's process) says yes and rebuilds itself.
  virtual bool switch_member(const TrainableContext& ctx) {
    (void)ctx;
    return false;
  }
};

using TrainableFactory = std::function<std::unique_ptr<Trainable>(const TrainableContext&)>;

// Trainables are chosen by name from the config ([trainable] kind = "toy"), registered in
// a Registry (pbt/registry.hpp) like the exploit and explore strategies.
// `check` validates the options before anything runs (may be empty).
void register_trainable(const std::string& kind, TrainableFactory factory,
                        std::function<void(const nlohmann::json& options, const std::string& where)> check = {});
std::unique_ptr<Trainable> make_trainable(const std::string& kind, const TrainableContext& ctx);
void check_trainable_options(const std::string& kind, const nlohmann::json& options, const std::string& where);
std::vector<std::string> trainable_kinds();

// Optional, per kind: checks one set of hyperparameters the way apply() would, without
// building a trainable (throws ConfigError naming the hyperparameter). With it, a config
// whose [space] bounds the trainable cannot take (a negative learning rate) is refused
// before anything runs, instead of failing every member's first interval.
using HyperparamsCheck = std::function<void(const Hyperparams& h)>;
void register_hyperparams_check(const std::string& kind, HyperparamsCheck check);
// Runs the kind's check (if any) on h; `where` names what h came from.
void check_trainable_hyperparams(const std::string& kind, const Hyperparams& h, const std::string& where);

// Registers the trainables built into this library (the toy problem, ...). Idempotent.
void register_builtin_trainables();

}  // namespace pbt
