// An out-of-tree pbt program: its own trainable, registered by name, run by one worker in
// this process on an SQLite store, then the best member printed.
// Usage: pbt_example CONFIG STORE.db
#include <cstdint>
#include <iostream>
#include <memory>

#include <pbt/pbt.hpp>
#include <pbt/version.hpp>

namespace {

// Gradient ascent on -(x - target)^2 from x = 0, at the learning rate PBT tunes.
class Quadratic : public pbt::Trainable {
 public:
  explicit Quadratic(double target) : target_(target) {}
  void apply(const pbt::Hyperparams& h) override { lr_ = pbt::as_double(h.at("lr")); }
  void step(std::int64_t n) override {
    for (std::int64_t i = 0; i < n; ++i) x_ += lr_ * 2 * (target_ - x_);
  }
  pbt::Score eval() override {
    pbt::Score s;
    s.value = -(x_ - target_) * (x_ - target_);
    return s;
  }
  void save(pbt::CheckpointWriter& out) const override { out.write(x_); }
  void load(pbt::CheckpointReader& in) override { x_ = in.read<double>(); }

 private:
  double target_;
  double lr_ = 0;
  double x_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: pbt_example CONFIG STORE.db\n";
    return 2;
  }
  try {
    pbt::register_trainable("quadratic", [](const pbt::TrainableContext& ctx) {
      return std::make_unique<Quadratic>(ctx.options.value("target", 3.0));
    });
    std::cout << "built against pbt " << pbt::kVersion << "; linked: " << pbt::version_text() << "\n";
    pbt::ExperimentConfig config = pbt::load_config(argv[1]);
    auto store = pbt::open_store(std::string("sqlite:") + argv[2]);
    pbt::create_or_join(*store, config);
    pbt::WorkerOptions opt;
    opt.id = "example";
    pbt::WorkerStats stats = pbt::run_worker(*store, config.name, opt);
    std::cout << "worker: " << stats.intervals << " intervals, " << stats.exploits << " exploits\n";
    auto population = store->population(config.name);
    const pbt::MemberState* best = pbt::best_member(population);
    if (!best) {
      std::cerr << "no member has a score\n";
      return 1;
    }
    std::cout << "best: member " << best->id << ", score " << *best->score << " at step " << best->step
              << ", h: " << pbt::to_string(best->h) << "\n";
  } catch (const pbt::ConfigError& e) {
    std::cerr << "pbt_example: config error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pbt_example: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
