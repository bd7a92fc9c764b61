// The worker loop: Algorithm 1 for one member per interval, over the shared store.
#include "pbt/worker.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "pbt/error.hpp"
#include "pbt/lineage.hpp"
#include "pbt/trainable.hpp"
#include "core/heartbeat.hpp"

namespace pbt {

namespace {

// The trainable this worker worked on last, kept in memory so that a worker that gets
// the same member back (the usual case with one worker per member) does not reload it.
struct Cached {
  int member = -1;
  std::int64_t step = -1;
  std::unique_ptr<Trainable> trainable;
  // Checkpoints whose check failed after a deferred load (see IntervalRunner::settle): the
  // next load of one is checked before training, so that recovery takes over.
  std::set<std::string> suspect;
  // Holds m as m was last published (nobody has trained it since).
  bool holds(const MemberState& m) const { return trainable && member == m.id && step == m.step; }
  void reset() {
    member = -1;
    step = -1;
    trainable.reset();
  }
};

// In a published score's metrics: the score came with a copy of this member and step.
constexpr const char* kCopiedFrom = "copied_from";

std::vector<double> last_n(std::vector<double> v, std::size_t n) {
  if (v.size() > n) v.erase(v.begin(), v.end() - static_cast<std::ptrdiff_t>(n));
  return v;
}

// A member is ready: it has trained `interval` steps since it last decided, and it decides
// (exploit, explore) at the start of its next interval, not at the end of the one that made
// it ready. By then the members it is compared with have (mostly) caught up with it: with
// more members than workers, a member is leased again only when it is the furthest behind.
bool pending(const ExperimentConfig& cfg, const MemberState& m) {
  return !m.done && !m.failed && m.score && cfg.ready.is_ready(m.step, m.last_ready_step);
}

// What one member decided: the donor it copies (if any) and the h it trains under next.
struct Choice {
  std::optional<MemberState> donor;  // as the decision saw it
  Hyperparams h;
  std::optional<Event> event;  // none when it kept its own θ and h
};

class IntervalRunner {
 public:
  IntervalRunner(Store& store, const ExperimentConfig& cfg, const Exploit& exploit, const Explore& explore,
                 const WorkerOptions& opt, WorkerStats& stats)
      : store_(store), cfg_(cfg), exploit_(exploit), explore_(explore), opt_(opt), stats_(stats) {}

  // Exploit and explore for `m` against `pop` (which holds m). `peers_only`: only members at
  // m's step or beyond may be donors, so that a copy never throws away steps m has trained.
  Choice decide(const MemberState& m, const std::vector<MemberState>& pop, bool peers_only) const {
    Choice c;
    c.h = m.h;
    std::vector<Candidate> candidates;
    std::vector<Hyperparams> candidate_h;
    Candidate self{m.id, *m.score, m.samples, m.step};
    for (const auto& o : pop) {
      if (o.id == m.id) {
        candidates.push_back(self);
        candidate_h.push_back(m.h);
      } else if (o.score && !o.failed && !o.checkpoint.empty()) {  // a member that gave up is no model to copy
        // A score that came with a copy is the donor's evidence, already counted once: such a
        // member ranks at that score (its θ is the donor's), but nobody copies it until it
        // has evaluated again.
        const bool copyable = !o.metrics.contains(kCopiedFrom) && (!peers_only || o.step >= m.step);
        candidates.push_back({o.id, *o.score, o.samples, o.step, copyable});
        candidate_h.push_back(o.h);
      }
    }
    Rng rng = make_rng(cfg_.seed, m.id, m.step, kExploit);
    Rng explore_rng = make_rng(cfg_.seed, m.id, m.step, kExplore);
    // The published history, read only for strategies that look at it (PB2's explore, FIRE's
    // exploit), and once for both. Scores, then events: an event read is never newer than
    // the scores it explains.
    std::vector<TrainedInterval> history;
    std::size_t history_held = 0;
    auto read_history = [&](std::size_t want) {
      if (want <= history_held) return;
      const std::int64_t from = history_start(cfg_, pop, want);
      std::vector<ScorePoint> scores = store_.scores_since(cfg_.name, from);
      history = trained_intervals(cfg_, store_.events_since(cfg_.name, from), scores, pop);
      history_held = want;
    };
    read_history(exploit_.history_intervals(cfg_.population));
    const ExploitContext exploit_ctx{cfg_.population, &candidate_h, &history};
    const std::optional<int> donor = exploit_.choose_in(self, candidates, rng, exploit_ctx);

    Event ev;
    ev.member = m.id;
    ev.step = m.step;
    ev.old_h = m.h;
    ev.old_score = *m.score;
    ev.worker = opt_.id;
    Hyperparams base = m.h;
    const bool explores = exploit_.explores(m.id, cfg_.population);  // false: FIRE's evaluators
    if (donor) {
      const MemberState* d = find(pop, *donor);
      c.donor = *d;
      ev.kind = EventKind::exploit;
      ev.donor = *donor;
      ev.copied = cfg_.copy;
      ev.donor_checkpoint = d->checkpoint;
      ev.donor_step = d->step;
      ev.donor_score = d->score.value_or(0);
      if (copies_hyperparameters(cfg_.copy)) base = d->h;
    } else if (cfg_.explore_always && explores) {
      ev.kind = EventKind::explore;
    } else {
      return c;  // kept its own θ, so it keeps its own h (explore only after a copy)
    }
    if (explores) {
      read_history(explore_.history_intervals());
      ExploreContext ctx{m.id, m.step, &candidates, &candidate_h, &history};
      c.h = explore_.explore(base, cfg_.space, explore_rng, ctx);
    } else {
      c.h = base;
    }
    ev.new_h = c.h;
    c.event = ev;
    return c;
  }

  // What a synchronous generation's decision makes of `m` (Store::decide applies it).
  Decision decision_for(const MemberState& m, const Choice& c) const {
    Decision d;
    d.member = m.id;
    d.step = m.step;
    d.last_ready_step = m.last_ready_step;
    d.h = c.h;
    d.score = *m.score;
    d.samples = m.samples;
    d.metrics = m.metrics;
    if (c.donor && copies_weights(cfg_.copy)) {
      // Its θ is the donor's now, and so is the evidence for it until it evaluates again.
      d.checkpoint = c.donor->checkpoint;
      d.score = c.donor->score.value_or(0);
      d.samples = c.donor->samples;
      d.metrics = c.donor->metrics;
      d.metrics[kCopiedFrom] = {{"member", c.donor->id}, {"step", c.donor->step}};
    }
    if (c.event) d.events.push_back(*c.event);
    return d;
  }

  void run(Leased& leased, Cached& cache, const Heartbeat& hb) {
    MemberState m = leased.member;
    std::vector<Event> events;
    std::optional<MemberState> donor;
    if (pending(cfg_, m)) donor = decide_now(m, events);
    if (donor && load_donor(m, *donor, cache)) {
      Event& ev = events.back();  // the donor may have moved on before we could load it
      ev.donor_step = donor->step;
      ev.donor_checkpoint = donor->checkpoint;
      ev.donor_score = donor->score.value_or(0);
    } else if (donor) {
      // Neither of the donor's checkpoints loaded: m keeps its own θ and h this time.
      m = leased.member;
      m.last_ready_step = m.step;
      events.clear();
    }
    Trainable& t = current_ ? *current_ : trainable_for(m, cache, events);
    cache.reset();  // from here until publish succeeds, memory and store differ

    const Hyperparams h = in_force(t, m, events);
    std::int64_t step = m.step;
    std::vector<ScorePoint> points;
    Score score;
    bool evaluated = false;

    // step until ready (or the budget), evaluating every eval_every steps.
    const std::int64_t ready_at = std::max(m.last_ready_step + cfg_.ready.interval, cfg_.ready.min_step);
    const std::int64_t until = std::min(ready_at, cfg_.budget_steps);
    while (step < until) {
      if (hb.lost()) throw LeaseLost("lost the lease on member " + std::to_string(m.id) + " during training");
      std::int64_t n = until - step;
      if (cfg_.eval_every > 0) n = std::min(n, cfg_.eval_every);
      t.step(n);
      step += n;
      score = checked_eval(t, m.id, step);
      evaluated = true;
      points.push_back({m.id, step, score.value});
    }
    if (!evaluated) {
      score = checked_eval(t, m.id, step);
      points.push_back({m.id, step, score.value});
    }

    std::vector<double> samples =
        score.samples.empty() ? last_n(append(m.samples, points), cfg_.window) : score.samples;
    const bool done = step >= cfg_.budget_steps;

    settle(cache);
    if (hb.lost()) throw LeaseLost("lost the lease on member " + std::to_string(m.id));
    // Streamed to the store as the trainable writes it (a file in the store's checkpoint
    // directory, hashed on the way), never held in memory whole.
    std::unique_ptr<CheckpointStager> staged = store_.stage_checkpoint();
    {
      CheckpointWriter w(*staged);
      t.save(w);
      w.flush();
    }
    Publication pub;
    pub.step = step;
    pub.last_ready_step = m.last_ready_step;
    pub.score = score.value;
    pub.samples = samples;
    pub.h = h;
    pub.checkpoint = staged->finish();
    pub.done = done;
    pub.metrics = score.metrics;
    pub.scores = std::move(points);
    pub.events = events;
    published_ = std::move(pub);
    member_ = m.id;
    step_ = step;
  }

  // Publishes what run() produced; on success the trainable is kept for next time.
  void publish(Lease& lease, Cached& cache) {
    store_.publish(lease, published_);
    cache.member = member_;
    cache.step = step_;
    cache.trainable = std::move(current_);
    stats_.intervals++;
    if (cfg_.target_score && published_.score >= *cfg_.target_score) {
      store_.finish(cfg_.name);
      log("member " + std::to_string(member_) + " reached the target score " + std::to_string(*cfg_.target_score));
    }
  }

 private:
  // A synchronous generation pointed m at its donor's checkpoint (Store::decide): the
  // trainable is told when it loads it.
  std::optional<Copied> copied_by_generation(const MemberState& m) const {
    if (!m.metrics.contains(kCopiedFrom)) return std::nullopt;
    const auto& from = m.metrics[kCopiedFrom];
    if (!from.is_object() || !from.contains("member") || !from["member"].is_number_integer()) return std::nullopt;
    Copied c;
    c.donor = from["member"].get<int>();
    c.donor_step = from.value("step", std::int64_t{0});
    c.seed = derive_seed(cfg_.seed, m.id, m.step, kCopy);
    return c;
  }

  // An asynchronous decision, made now against the population as it is: m takes the
  // decision's h; returns the donor when m is to take its weights.
  std::optional<MemberState> decide_now(MemberState& m, std::vector<Event>& events) {
    const std::vector<MemberState> pop = store_.population(cfg_.name);
    Choice c = decide(m, pop, /*peers_only=*/true);
    m.last_ready_step = m.step;
    if (!c.event) return std::nullopt;
    if (c.donor) stats_.exploits++;
    m.h = c.h;
    events.push_back(*c.event);
    if (c.donor && copies_weights(cfg_.copy)) {
      m.samples = c.donor->samples;  // the donor's evidence comes with its θ
      return c.donor;
    }
    return std::nullopt;
  }

  TrainableContext context_for(const MemberState& m) const {
    TrainableContext ctx;
    ctx.member = m.id;
    ctx.seed = derive_seed(cfg_.seed, m.id, 0, kTrain);
    ctx.options = cfg_.trainable_options;
    // The trainable may outlive this runner (the worker keeps it for the member's next
    // interval), so its log goes through the worker's options, not through `this`.
    ctx.log = [&opt = opt_, id = m.id](const std::string& line) {
      if (opt.log) opt.log("member " + std::to_string(id) + ": " + line);
    };
    ctx.scratch_dir = store_.scratch_dir();
    return ctx;
  }

  // The trainable this worker kept for m from m's last interval here (in the state m last
  // published); else the one it kept for another member, if it agrees to serve m (a process
  // trainer's child, with its imports done, goes on instead of being started again); else a
  // new one. A copy loads over it.
  std::unique_ptr<Trainable> kept_or_fresh(const MemberState& m, Cached& cache) const {
    if (cache.holds(m)) return std::move(cache.trainable);
    const TrainableContext ctx = context_for(m);
    if (cache.trainable && cache.trainable->switch_member(ctx)) {
      stats_.member_switches++;
      return std::move(cache.trainable);
    }
    cache.trainable.reset();  // its process, if any, ends before the new one starts
    stats_.trainables_built++;
    return make_trainable(cfg_.trainable, ctx);
  }

  // Streams checkpoint `id` into t. Its check against the id (a hash of every byte, on a
  // thread of the store's) goes on while the interval trains, and settle() collects it
  // before anything is published; `now` (or a checkpoint that failed a check before) waits
  // for it here, so that a CheckpointError comes before training.
  void load_checkpoint(Trainable& t, const std::string& id, Cached& cache, bool now) {
    checking_.reset();  // a check of what t held before no longer matters
    std::unique_ptr<CheckpointSource> source = store_.open_checkpoint(id);
    CheckpointReader r(*source);
    t.load(r);
    if (now || cache.suspect.count(id)) {
      source->finish();
      return;
    }
    checking_ = std::move(source);
    checking_id_ = id;
  }

  // The deferred check of the checkpoint loaded for this interval: a mismatch drops the
  // interval's work (nothing is published) and marks the checkpoint suspect.
  void settle(Cached& cache) {
    if (!checking_) return;
    std::unique_ptr<CheckpointSource> source = std::move(checking_);
    try {
      source->finish();
    } catch (const CheckpointError& e) {
      cache.suspect.insert(checking_id_);
      throw CheckpointError(std::string(e.what()) +
                            " (found while the interval trained: its work is dropped, and the next load of this "
                            "checkpoint is checked first)");
    }
  }

  // m's own model: kept in memory from its last interval on this worker, or its checkpoint
  // (its donor's, when a synchronous generation copied one: the trainable is told).
  Trainable& trainable_for(const MemberState& m, Cached& cache, std::vector<Event>& events) {
    const std::optional<Copied> copied = copied_by_generation(m);
    const bool kept = cache.holds(m);
    current_ = kept_or_fresh(m, cache);
    if ((kept && !copied) || m.checkpoint.empty()) return *current_;
    try {
      load_checkpoint(*current_, m.checkpoint, cache, false);
      if (copied) current_->copied(*copied);
    } catch (const CheckpointError& e) {
      recover(m, e.what(), cache, events);
    }
    return *current_;
  }

  // Loads the donor's checkpoint an asynchronous decision chose. The donor may have published
  // (and its old checkpoint been collected) since we read the population: then it takes the
  // donor's newer checkpoint, at a step >= m's all the same.
  bool load_donor(MemberState& m, MemberState& d, Cached& cache) {
    current_ = kept_or_fresh(m, cache);
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        load_checkpoint(*current_, d.checkpoint, cache, false);
        current_->copied(Copied{d.id, d.step, derive_seed(cfg_.seed, m.id, m.step, kCopy)});
        m.checkpoint = d.checkpoint;
        return true;
      } catch (const CheckpointError& e) {
        if (attempt == 1) {
          log("member " + std::to_string(d.id) + "'s checkpoint could not be loaded (" + e.what() + "); not copying");
          break;
        }
        for (const auto& o : store_.population(cfg_.name))
          if (o.id == d.id) d = o;
      }
    }
    current_.reset();  // a load that failed half-way leaves a state nobody published
    return false;
  }

  // The member's own checkpoint is unreadable: the population goes on, and this member
  // continues from the best member whose checkpoint loads, keeping its own h. Recorded
  // as a "recover" event so the lineage shows it.
  void recover(const MemberState& m, const std::string& why, Cached& cache, std::vector<Event>& events) {
    log("member " + std::to_string(m.id) + ": its checkpoint " + m.checkpoint + " cannot be used (" + why + ")");
    std::vector<MemberState> pop = store_.population(cfg_.name);
    std::sort(pop.begin(), pop.end(), [](const MemberState& a, const MemberState& b) {
      return a.score.value_or(-HUGE_VAL) > b.score.value_or(-HUGE_VAL);
    });
    for (const auto& d : pop) {
      if (d.id == m.id || d.checkpoint.empty() || d.checkpoint == m.checkpoint) continue;
      try {
        load_checkpoint(*current_, d.checkpoint, cache, true);
        current_->copied(Copied{d.id, d.step, derive_seed(cfg_.seed, m.id, m.step, kCopy)});
      } catch (const CheckpointError&) {
        continue;
      }
      log("member " + std::to_string(m.id) + ": continuing from member " + std::to_string(d.id) + "'s checkpoint");
      Event ev;
      ev.member = m.id;
      ev.step = m.step;
      ev.kind = EventKind::recover;
      ev.donor = d.id;
      ev.donor_step = d.step;
      ev.copied = CopyMode::weights;
      ev.donor_checkpoint = d.checkpoint;
      ev.old_h = ev.new_h = m.h;
      ev.old_score = m.score.value_or(0);
      ev.donor_score = d.score.value_or(0);
      ev.worker = opt_.id;
      events.push_back(ev);
      return;
    }
    throw CheckpointError("member " + std::to_string(m.id) + ": checkpoint " + m.checkpoint + " cannot be used (" +
                          why + ") and no other member's checkpoint loads");
  }

  // Applies m's h to t; what t accepted instead (Trainable::accepted), once checked against
  // [space], is the h in force: published, and this interval's own decision event shows it.
  Hyperparams in_force(Trainable& t, const MemberState& m, std::vector<Event>& events) const {
    t.apply(m.h);
    std::optional<Hyperparams> accepted = t.accepted();
    if (!accepted) return m.h;
    for (auto& [name, v] : *accepted) {  // a whole number sent for a float is that float
      const Param* p = cfg_.space.find(name);
      if (p && p->kind == Param::Kind::Float && std::holds_alternative<std::int64_t>(v)) v = as_double(v);
    }
    if (*accepted == m.h) return m.h;
    const std::string why = cfg_.space.problem(*accepted);
    if (!why.empty())
      throw Error("member " + std::to_string(m.id) + ": the trainable accepted hyperparameters outside [space] (" +
                  why + "); it was given " + to_string(m.h));
    log("member " + std::to_string(m.id) + " at step " + std::to_string(m.step) + ": the trainable accepted " +
        to_string(*accepted) + " for " + to_string(m.h));
    for (auto& ev : events)
      if (ev.step == m.step && ev.kind != EventKind::recover) ev.new_h = *accepted;
    return *accepted;
  }

  static std::vector<double> append(std::vector<double> v, const std::vector<ScorePoint>& points) {
    for (const auto& p : points) v.push_back(p.score);
    return v;
  }

  Score checked_eval(Trainable& t, int member, std::int64_t step) {
    Score s = t.eval();
    if (!std::isfinite(s.value)) {
      // A diverged model ranks last, so exploit replaces it; the run goes on.
      log("member " + std::to_string(member) + " at step " + std::to_string(step) +
          ": eval returned a non-finite score; ranking it last");
      s.metrics["non_finite_score"] = true;
      s.value = kDivergedScore;
    }
    for (double& x : s.samples)
      if (!std::isfinite(x)) x = kDivergedScore;
    return s;
  }

  static const MemberState* find(const std::vector<MemberState>& pop, int id) {
    for (const auto& m : pop)
      if (m.id == id) return &m;
    return nullptr;
  }

  void log(const std::string& line) const {
    if (opt_.log) opt_.log(line);
  }

  Store& store_;
  const ExperimentConfig& cfg_;
  const Exploit& exploit_;
  const Explore& explore_;
  const WorkerOptions& opt_;
  WorkerStats& stats_;
  std::unique_ptr<Trainable> current_;
  std::unique_ptr<CheckpointSource> checking_;  // the load whose check settle() collects
  std::string checking_id_;
  Publication published_;
  int member_ = -1;
  std::int64_t step_ = 0;
};

// Synchronous mode: `leased` is ready at its step s. When every live member has reached s,
// this worker decides for the whole generation against the population it reads, and the
// store applies every decision at once; otherwise the generation waits for its stragglers.
// A failed member is left out; a member whose worker died is resumed by another worker once
// its lease expires, so nothing waits forever. Either way the member is given back.
// Returns whether the generation was complete (false: the caller waits before looking again).
bool synchronize(Store& store, const ExperimentConfig& cfg, const IntervalRunner& runner, const Leased& leased,
                 const WorkerOptions& opt, WorkerStats& stats) {
  const std::int64_t s = leased.member.step;
  const std::vector<MemberState> pop = store.population(cfg.name);
  const bool complete =
      std::all_of(pop.begin(), pop.end(), [&](const MemberState& o) { return o.failed || o.step >= s; });
  if (complete) {
    std::vector<Decision> decisions;
    int copies = 0;
    for (const auto& o : pop) {
      if (o.step != s || !pending(cfg, o)) continue;
      Choice c = runner.decide(o, pop, /*peers_only=*/false);
      copies += c.donor ? 1 : 0;
      decisions.push_back(runner.decision_for(o, c));
    }
    try {
      store.decide(cfg.name, decisions);
      stats.exploits += copies;
      opt.log("generation at step " + std::to_string(s) + ": " + std::to_string(decisions.size()) +
              " members decided, " + std::to_string(copies) + " copied a better member");
    } catch (const LeaseLost& e) {
      opt.log(std::string("generation at step ") + std::to_string(s) + " decided by another worker (" + e.what() + ")");
    }
  }
  try {
    store.release(leased.lease);  // a no-op when the decisions were applied: they freed it
  } catch (const std::exception&) {
  }
  return complete;
}

// Waits at a synchronous generation's barrier (step s) by reading the population, without
// leasing: a worker that leased other workers' members just to look would take them over
// (leases prefer the worker that held a member last) and make their trainers restart. Returns
// when the generation is complete, or a straggler is free for this worker to train (its
// worker gave it back or died: its lease expired), or the worker is asked to stop. It looks
// every idle_sleep_seconds (twice that after the first look): a worker that woke up later
// than the generation's end would find its member taken by a worker with nothing else to do.
void wait_for_generation(Store& store, const ExperimentConfig& cfg, std::int64_t s, const WorkerOptions& opt) {
  std::set<int> free_before;  // stragglers nobody held at the last look
  for (int waits = 1;; waits = 2) {
    std::this_thread::sleep_for(std::chrono::duration<double>(opt.idle_sleep_seconds * waits));
    if (opt.stop && opt.stop->load()) return;
    const std::vector<MemberState> pop = store.population(cfg.name);
    const double now = store.now();
    bool complete = true;
    std::set<int> free_now;
    for (const auto& o : pop) {
      if (o.failed || o.step >= s) continue;
      complete = false;
      if (o.owner.empty() || o.lease_expires < now) {
        // Free twice in a row: its worker has not taken it back (gone, or its lease expired).
        // Free once may be a worker between its publish and its next lease of the member.
        if (o.lease_expires < now && !o.owner.empty()) return;
        if (free_before.count(o.id)) return;
        free_now.insert(o.id);
      }
    }
    if (complete) return;
    free_before = std::move(free_now);
  }
}

bool all_done(const std::vector<MemberState>& pop) {
  for (const auto& m : pop)
    if (!m.done && !m.failed) return false;
  return true;
}

}  // namespace

std::string default_worker_id() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
  return std::string(host) + ":" + std::to_string(getpid());
}

bool create_or_join(Store& store, const ExperimentConfig& config) {
  if (auto existing = store.experiment(config.name)) {
    if (existing->config != config.text)
      throw Error("the store already holds an experiment named '" + config.name + "' with a different config (from " +
                  existing->origin + "); give this one another name or another run directory");
    return false;
  }
  std::vector<MemberState> members;
  auto hs = initial_hyperparams(config);
  for (int i = 0; i < config.population; ++i) {
    MemberState m;
    m.id = i;
    m.h = hs[i];
    members.push_back(m);
  }
  ExperimentInfo info;
  info.name = config.name;
  info.config = config.text;
  info.origin = config.origin;
  info.population = config.population;
  store.create_experiment(info, members);
  return true;
}

ExperimentConfig stored_config(const ExperimentInfo& info) {
  try {
    return parse_config(info.config, info.origin);
  } catch (const ConfigError& e) {
    throw StoreError("experiment '" + info.name + "': the copy of its config held in the store (taken from " +
                     info.origin + " when the experiment was created) cannot be used: " + e.what());
  }
}

WorkerStats run_worker(Store& store, const std::string& experiment, const WorkerOptions& options) {
  auto info = store.experiment(experiment);
  if (!info) throw Error("the store has no experiment named '" + experiment + "'");
  const ExperimentConfig cfg = stored_config(*info);
  const auto exploit = make_exploit(cfg.exploit, cfg.exploit_options, cfg.origin + ": exploit");
  const auto explore = make_explore(cfg.explore, cfg.explore_options, cfg.origin + ": explore");

  WorkerOptions opt = options;
  if (opt.id.empty()) opt.id = default_worker_id();
  if (!opt.log) opt.log = [](const std::string&) {};

  WorkerStats stats;
  Cached cache;
  // What a worker killed earlier may have left (a checkpoint file without a row, the temp file
  // of a checkpoint it was writing) goes when the next worker starts: `pbt run` replaces a
  // dead worker by a new one. Best effort: a store that cannot do it now does it next time.
  try {
    store.collect_garbage();
  } catch (const StoreError& e) {
    opt.log(std::string("garbage collection skipped: ") + e.what());
  }
  int store_failures = 0;
  constexpr int kMaxStoreFailures = 60;      // in a row: ~1 minute of an unreachable store
  constexpr int kMaxStoreErrorsOnLease = 3;  // in a row: the store answers, with an error
  // Per member: intervals in a row whose store work failed. Reset only by a publish of that
  // member, not by a lease: a store that leases fine but refuses every publish (a checkpoint
  // over SQLite's limit, a malformed page) would otherwise retrain the member forever.
  std::map<int, int> publish_failures;

  while (opt.max_intervals < 0 || stats.intervals < opt.max_intervals) {
    if (opt.stop && opt.stop->load()) break;
    std::optional<Leased> leased;
    try {
      leased = store.lease(experiment, opt.id, cfg.lease_seconds);
      if (!leased) {
        auto now = store.experiment(experiment);
        if (!now || now->finished || all_done(store.population(experiment))) break;
        std::this_thread::sleep_for(std::chrono::duration<double>(opt.idle_sleep_seconds));
        continue;
      }
      store_failures = 0;
    } catch (const StoreError& e) {
      // A store that cannot be reached may come back; one that answers with an error (a
      // garbled row, a dropped table) gives the same answer next time: stop after a few.
      const bool transient = dynamic_cast<const StoreUnavailable*>(&e) != nullptr;
      if (++store_failures > (transient ? kMaxStoreFailures : kMaxStoreErrorsOnLease)) throw;
      opt.log(std::string(transient ? "store unavailable, retrying: " : "store error, retrying: ") + e.what());
      std::this_thread::sleep_for(std::chrono::duration<double>(opt.store_retry_seconds));
      continue;
    }

    const int member = leased->member.id;
    IntervalRunner runner(store, cfg, *exploit, *explore, opt, stats);
    try {
      if (cfg.ready.sync && pending(cfg, leased->member)) {
        store_failures = 0;
        if (!synchronize(store, cfg, runner, *leased, opt, stats))
          wait_for_generation(store, cfg, leased->member.step, opt);
        continue;
      }
      {
        Heartbeat hb(store, leased->lease, cfg.lease_seconds, opt.log);
        runner.run(*leased, cache, hb);
        hb.stop();
        if (hb.lost()) throw LeaseLost("lost the lease on member " + std::to_string(member));
      }
      runner.publish(leased->lease, cache);
      store_failures = 0;
      publish_failures.erase(member);
    } catch (const LeaseLost& e) {
      stats.lost_leases++;
      cache.reset();
      opt.log(std::string("dropped an interval: ") + e.what());
      continue;  // someone else holds the member now: nothing to release
    } catch (const StoreError& e) {
      cache.reset();
      const std::string where = "member " + std::to_string(member);
      const int failures = ++publish_failures[member];
      if (dynamic_cast<const StoreUnavailable*>(&e)) {
        // Busy or unreachable: the same interval may well go through later; nothing is lost.
        opt.log(where + ": store unavailable, interval dropped (will retry): " + e.what());
        try {
          store.release(leased->lease);
        } catch (const std::exception&) {
        }
        if (failures > kMaxStoreFailures)
          throw StoreError(where + ": the store was unavailable for " + std::to_string(failures) +
                           " intervals in a row; giving up: " + e.what());
        std::this_thread::sleep_for(std::chrono::duration<double>(opt.store_retry_seconds));
        continue;
      }
      // The store refused this interval's work in a way that will repeat: count it as a failed
      // interval of the member, which is marked failed (with the store's error) after
      // max_failures of them in a row, as when its trainer fails.
      stats.failed_intervals++;
      opt.log(where + ": store error, interval dropped: " + e.what());
      try {
        if (store.fail(leased->lease, std::string("store error: ") + e.what(), cfg.max_failures)) {
          opt.log(where + ": marked failed after " + std::to_string(cfg.max_failures) +
                  " failed intervals in a row; the population goes on without it");
          publish_failures.erase(member);
        }
      } catch (const LeaseLost& f) {
        opt.log(std::string("could not record the failure: ") + f.what());
      } catch (const std::exception& f) {
        try {
          store.release(leased->lease);
        } catch (const std::exception&) {
        }
        if (failures >= cfg.max_failures)
          throw StoreError(where + ": the store refused its interval " + std::to_string(failures) +
                           " times in a row (" + e.what() + ") and could not mark the member failed either (" +
                           f.what() + ")");
        opt.log(std::string("could not record the failure (will retry): ") + f.what());
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(opt.store_retry_seconds));
      continue;
    } catch (const std::exception& e) {
      // The trainer failed (crash, timeout, bad checkpoint...): nothing is published, the
      // member stays at its last published checkpoint and is retried, up to max_failures.
      stats.failed_intervals++;
      cache.reset();
      const std::string where = "member " + std::to_string(member) + " at step " + std::to_string(leased->member.step);
      opt.log(where + ": interval failed: " + e.what());
      try {
        if (store.fail(leased->lease, e.what(), cfg.max_failures))
          opt.log(where + ": marked failed after " + std::to_string(cfg.max_failures) +
                  " failed intervals in a row; the population goes on without it");
      } catch (const std::exception& f) {
        opt.log(std::string("could not record the failure (the lease will expire): ") + f.what());
      }
      continue;
    }
    try {
      store.release(leased->lease);
    } catch (const std::exception& e) {
      opt.log(std::string("release failed (the lease will expire): ") + e.what());
    }
  }
  return stats;
}

}  // namespace pbt
