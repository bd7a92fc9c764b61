// The in-memory store (see memory_store.hpp).
#include "store/memory_store.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "pbt/error.hpp"
#include "store/codec.hpp"

namespace pbt {

namespace {

std::string lease_lost_message(const Lease& lease, const std::string& why) {
  return "lease lost: member " + std::to_string(lease.member) + " of experiment '" + lease.experiment +
         "' is no longer held by worker '" + lease.worker + "' (" + why + ")";
}

}  // namespace

double MemoryStore::now_locked() const {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count() + offset_;
}

double MemoryStore::now() {
  std::lock_guard<std::mutex> lock(mutex_);
  return now_locked();
}

void MemoryStore::advance_clock(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  offset_ += seconds;
}

std::size_t MemoryStore::checkpoint_count() {
  std::lock_guard<std::mutex> lock(mutex_);
  return checkpoints_.size();
}

std::string MemoryStore::put_orphan_checkpoint(const std::string& bytes) {
  std::string id = checkpoint_id(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  checkpoints_.emplace(id, bytes);
  return id;
}

void MemoryStore::corrupt_checkpoint(const std::string& id, const std::string& bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  checkpoints_.at(id) = bytes;
}

MemoryStore::Experiment& MemoryStore::find(const std::string& name) {
  auto it = experiments_.find(name);
  if (it == experiments_.end()) throw StoreError("unknown experiment '" + name + "' in store memory:");
  return it->second;
}

bool MemoryStore::referenced(const std::string& checkpoint) const {
  for (const auto& [name, e] : experiments_)
    for (const auto& [id, m] : e.members)
      if (m.checkpoint == checkpoint) return true;
  return false;
}

void MemoryStore::create_experiment(const ExperimentInfo& info, const std::vector<MemberState>& members) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (experiments_.count(info.name)) throw StoreError("experiment '" + info.name + "' already exists in store memory:");
  Experiment e;
  e.info = info;
  if (e.info.population == 0) e.info.population = static_cast<int>(members.size());
  if (e.info.created == 0) e.info.created = now_locked();
  for (const auto& m : members) {
    if (e.members.count(m.id))
      throw StoreError("experiment '" + info.name + "': member id " + std::to_string(m.id) + " given twice");
    MemberState s = m;
    s.owner.clear();
    s.lease_expires = 0;
    e.members[m.id] = s;
  }
  experiments_.emplace(info.name, std::move(e));
}

std::optional<ExperimentInfo> MemoryStore::experiment(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = experiments_.find(name);
  if (it == experiments_.end()) return std::nullopt;
  return it->second.info;
}

std::vector<std::string> MemoryStore::experiments() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, e] : experiments_) out.push_back(name);
  return out;
}

std::optional<Leased> MemoryStore::lease(const std::string& experiment, const std::string& worker,
                                         double lease_seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  Experiment& e = find(experiment);
  if (e.info.finished) return std::nullopt;
  const double t = now_locked();
  MemberState* best = nullptr;
  for (auto& [id, m] : e.members) {  // ascending id
    if (m.done || m.failed || !(m.owner.empty() || m.owner == worker || m.lease_expires < t)) continue;
    if (!best || m.step < best->step || (m.step == best->step && m.last_owner == worker && best->last_owner != worker))
      best = &m;
  }
  if (!best) return std::nullopt;
  best->owner = worker;
  best->last_owner = worker;
  best->version += 1;
  best->lease_expires = t + lease_seconds;
  return Leased{Lease{experiment, best->id, worker, best->version}, *best};
}

void MemoryStore::heartbeat(const Lease& lease, double lease_seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto e = experiments_.find(lease.experiment);
  if (e == experiments_.end()) throw LeaseLost(lease_lost_message(lease, "the experiment is gone"));
  auto m = e->second.members.find(lease.member);
  if (m == e->second.members.end() || m->second.version != lease.version || m->second.owner != lease.worker)
    throw LeaseLost(lease_lost_message(lease, "heartbeat found another version or owner"));
  m->second.lease_expires = now_locked() + lease_seconds;
}

void MemoryStore::publish(Lease& lease, const Publication& pub) {
  const std::string new_checkpoint = store_codec::publication_checkpoint_id(pub);
  std::lock_guard<std::mutex> lock(mutex_);
  auto e = experiments_.find(lease.experiment);
  if (e == experiments_.end()) throw LeaseLost(lease_lost_message(lease, "the experiment is gone"));
  auto mit = e->second.members.find(lease.member);
  if (mit == e->second.members.end() || mit->second.version != lease.version || mit->second.owner != lease.worker)
    throw LeaseLost(lease_lost_message(lease, "publish found another version or owner"));
  MemberState& m = mit->second;
  const double t = now_locked();

  const std::string old_checkpoint = m.checkpoint;
  if (!new_checkpoint.empty()) {
    checkpoints_.emplace(new_checkpoint, store_codec::publication_bytes(pub));
    m.checkpoint = new_checkpoint;
  }
  m.step = pub.step;
  m.last_ready_step = pub.last_ready_step;
  if (std::isnan(pub.score)) m.score.reset();  // as SQLite, which stores NaN as NULL
  else m.score = pub.score;
  m.samples = pub.samples;
  m.h = pub.h;
  m.done = pub.done;
  m.metrics = pub.metrics;
  m.failures = 0;
  m.last_error.clear();
  m.version += 1;
  for (const auto& s : pub.scores) e->second.scores.push_back(s);
  for (Event ev : pub.events) {
    ev.time = t;
    if (ev.worker.empty()) ev.worker = lease.worker;
    e->second.events.push_back(std::move(ev));
  }
  if (!old_checkpoint.empty() && old_checkpoint != m.checkpoint && !referenced(old_checkpoint))
    checkpoints_.erase(old_checkpoint);
  lease.version = m.version;
}

void MemoryStore::release(const Lease& lease) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto e = experiments_.find(lease.experiment);
  if (e == experiments_.end()) return;
  auto m = e->second.members.find(lease.member);
  if (m == e->second.members.end() || m->second.version != lease.version || m->second.owner != lease.worker) return;
  m->second.owner.clear();
  m->second.lease_expires = 0;
}

bool MemoryStore::fail(const Lease& lease, const std::string& error, int max_failures) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& members = find(lease.experiment).members;
  auto m = members.find(lease.member);
  if (m == members.end() || m->second.version != lease.version || m->second.owner != lease.worker)
    throw LeaseLost(lease_lost_message(lease, "recording a failure found another version or owner"));
  MemberState& s = m->second;
  s.failures += 1;
  s.last_error = error;
  s.failed = s.failures >= max_failures;
  s.owner.clear();
  s.lease_expires = 0;
  s.version += 1;
  return s.failed;
}

void MemoryStore::decide(const std::string& experiment, const std::vector<Decision>& decisions) {
  if (decisions.empty()) return;
  const std::string where = "store memory:";
  store_codec::check_decisions(where, experiment, decisions);
  std::lock_guard<std::mutex> lock(mutex_);
  Experiment& e = find(experiment);
  // Every check before any change: all or nothing.
  for (const auto& d : decisions) {
    auto it = e.members.find(d.member);
    const MemberState* m = it == e.members.end() ? nullptr : &it->second;
    if (!m || m->failed || m->step != d.step || m->last_ready_step != d.last_ready_step)
      throw LeaseLost(store_codec::stale_decision_text(where, experiment, d, m));
  }
  for (const auto& d : decisions) {  // (staleness first: the one that says another worker won)
    if (!d.checkpoint.empty() && !checkpoints_.count(d.checkpoint))
      throw StoreError(store_codec::unknown_checkpoint_text(where, experiment, d));
  }
  const double t = now_locked();
  std::vector<std::string> dropped;  // checkpoints members stopped referring to
  for (const auto& d : decisions) {
    MemberState& m = e.members.at(d.member);
    if (!d.checkpoint.empty() && d.checkpoint != m.checkpoint) {
      if (!m.checkpoint.empty()) dropped.push_back(m.checkpoint);
      m.checkpoint = d.checkpoint;
    }
    m.last_ready_step = d.step;
    m.h = d.h;
    if (std::isnan(d.score)) m.score.reset();  // as in publish
    else m.score = d.score;
    m.samples = d.samples;
    m.metrics = d.metrics;
    m.owner.clear();
    m.lease_expires = 0;
    m.version += 1;
    for (Event ev : d.events) {
      ev.time = t;
      e.events.push_back(std::move(ev));
    }
  }
  for (const auto& id : dropped)
    if (!referenced(id)) checkpoints_.erase(id);
}

void MemoryStore::finish(const std::string& experiment) {
  std::lock_guard<std::mutex> lock(mutex_);
  find(experiment).info.finished = true;
}

std::vector<MemberState> MemoryStore::population(const std::string& experiment) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<MemberState> out;
  for (const auto& [id, m] : find(experiment).members) out.push_back(m);
  return out;
}

std::string MemoryStore::checkpoint(const std::string& id) {
  std::string bytes;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = checkpoints_.find(id);
    if (it == checkpoints_.end()) throw CheckpointError("checkpoint " + id + " is missing from store memory:");
    bytes = it->second;
  }
  if (checkpoint_id(bytes) != id)
    throw CheckpointError("checkpoint " + id + " in store memory: does not match its hash");
  return bytes;
}

std::vector<Event> MemoryStore::events(const std::string& experiment) {
  std::lock_guard<std::mutex> lock(mutex_);
  return find(experiment).events;
}

std::vector<Event> MemoryStore::events_since(const std::string& experiment, std::int64_t from_step) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Event> out;
  for (const auto& e : find(experiment).events)
    if (e.step >= from_step) out.push_back(e);
  return out;
}

std::vector<ScorePoint> MemoryStore::scores(const std::string& experiment) {
  return scores_since(experiment, kAllSteps);
}

std::vector<ScorePoint> MemoryStore::scores_since(const std::string& experiment, std::int64_t from_step) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ScorePoint> out;
  for (const auto& p : find(experiment).scores)
    if (p.step >= from_step) out.push_back(p);
  std::stable_sort(out.begin(), out.end(), [](const ScorePoint& a, const ScorePoint& b) {
    return a.member != b.member ? a.member < b.member : a.step < b.step;
  });
  return out;
}

std::size_t MemoryStore::collect_garbage() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t n = 0;
  for (auto it = checkpoints_.begin(); it != checkpoints_.end();) {
    if (referenced(it->first)) {
      ++it;
    } else {
      it = checkpoints_.erase(it);
      ++n;
    }
  }
  return n;
}

}  // namespace pbt
