// Row mapping shared by the database backends (see rows.hpp).
#include "store/rows.hpp"

#include <sstream>

namespace pbt::store_codec {

const char* const kExperimentColumns = "name, config, origin, population, finished, created";
const char* const kMemberColumns =
    "id, step, last_ready_step, score, samples, h, checkpoint, done, version, owner, "
    "lease_expires, last_owner, metrics, failures, failed, last_error";
const char* const kNewMemberColumns =
    "id, step, last_ready_step, score, samples, h, checkpoint, done, version, last_owner, metrics";
const char* const kPublishedColumns = "step, last_ready_step, score, samples, h, done, metrics";
const char* const kDecidedColumns = "last_ready_step, score, samples, h, metrics";
const char* const kEventColumns =
    "member, step, kind, donor, donor_step, copied, donor_checkpoint, old_h, new_h, old_score, donor_score, "
    "new_score, worker";
const char* const kScoreColumns = "member, step, score";

namespace {

template <class F>
void for_each_column(const std::string& columns, F&& f) {
  std::istringstream in(columns);
  std::string name;
  while (std::getline(in, name, ',')) f(name.substr(name.find_first_not_of(' ')));
}

std::string placeholder(int i, int first) { return first == 0 ? "?" : "$" + std::to_string(first + i); }

}  // namespace

std::string qualified(const std::string& columns, const std::string& alias) {
  std::string out;
  for_each_column(columns, [&](const std::string& c) { out += (out.empty() ? "" : ", ") + alias + "." + c; });
  return out;
}

std::string placeholders(int n, int first) {
  std::string out;
  for (int i = 0; i < n; ++i) out += (i ? ", " : "") + placeholder(i, first);
  return out;
}

std::string assignments(const std::string& columns, int first) {
  std::string out;
  int i = 0;
  for_each_column(
      columns, [&](const std::string& c) { out += (out.empty() ? "" : ", ") + c + " = " + placeholder(i++, first); });
  return out;
}

ExperimentInfo experiment_from_row(const Row& row) {
  ExperimentInfo info;
  info.name = row.text(0);
  info.config = row.text(1);
  info.origin = row.text(2);
  info.population = static_cast<int>(row.i64(3));
  info.finished = row.boolean(4);
  info.created = row.real(5);
  return info;
}

MemberState member_from_row(const Row& r, const std::string& store, const std::string& experiment) {
  MemberState m;
  m.id = static_cast<int>(r.i64(0));
  const auto row = [&] {
    return store + ": table members, experiment '" + experiment + "', member " + std::to_string(m.id);
  };
  m.step = r.i64(1);
  m.last_ready_step = r.i64(2);
  m.score = r.opt_real(3);
  m.samples = column(row, "samples", [&] { return samples_from_text(r.text(4)); });
  m.h = column(row, "h", [&] { return h_from_text(r.text(5)); });
  m.checkpoint = r.text(6);
  m.done = r.boolean(7);
  m.version = r.i64(8);
  m.owner = r.text(9);
  m.lease_expires = r.real(10);
  m.last_owner = r.text(11);
  m.metrics = column(row, "metrics", [&] { return nlohmann::json::parse(r.text(12)); });
  m.failures = static_cast<int>(r.i64(13));
  m.failed = r.boolean(14);
  m.last_error = r.text(15);
  return m;
}

// Event::kind and Event::copied are stored as their text, here and in event_values only.
Event event_from_row(const Row& r, const std::string& store, const std::string& experiment) {
  Event ev;
  ev.member = static_cast<int>(r.i64(0));
  ev.step = r.i64(1);
  const auto row = [&] {
    return store + ": table events, experiment '" + experiment + "', event of member " + std::to_string(ev.member) +
           " at step " + std::to_string(ev.step);
  };
  ev.kind = column(row, "kind", [&] { return parse_event_kind(r.text(2)); });
  ev.donor = static_cast<int>(r.i64(3));
  ev.donor_step = r.i64(4);
  ev.copied = column(row, "copied", [&] { return parse_copy_mode(r.text(5)); });
  ev.donor_checkpoint = r.text(6);
  ev.old_h = column(row, "old_h", [&] { return h_from_text(r.text(7)); });
  ev.new_h = column(row, "new_h", [&] { return h_from_text(r.text(8)); });
  ev.old_score = r.real(9);
  ev.donor_score = r.real(10);
  ev.new_score = r.opt_real(11);
  ev.worker = r.text(12);
  ev.time = r.real(13);
  return ev;
}

std::tuple<int, std::int64_t, std::string, int, std::int64_t, std::string, std::string, std::string, std::string,
           double, double, std::optional<double>, std::string>
event_values(const Event& ev, const std::string& worker) {
  return {ev.member,
          ev.step,
          to_string(ev.kind),
          ev.donor,
          ev.donor_step,
          to_string(ev.copied),
          ev.donor_checkpoint,
          dump(to_json(ev.old_h)),
          dump(to_json(ev.new_h)),
          ev.old_score,
          ev.donor_score,
          ev.new_score,
          ev.worker.empty() ? worker : ev.worker};
}

std::string lease_lost_text(const Lease& lease, const std::string& what, std::optional<std::int64_t> version,
                            const std::string& owner) {
  const std::string now = !version ? "the member is gone"
                                   : "it is at version " + std::to_string(*version) +
                                         (owner.empty() ? ", free" : ", held by '" + owner + "'");
  return "lease lost: " + what + ": " + lease_text(lease) + " is no longer held by worker '" + lease.worker +
         "' at version " + std::to_string(lease.version) + " (" + now + ")";
}

}  // namespace pbt::store_codec
