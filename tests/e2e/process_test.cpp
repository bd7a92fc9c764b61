// The `process` trainable with real child processes: the protocol, every way a child can
// misbehave (at the trainable, and in a real `pbt run` where the member must fail
// cleanly while the population runs on), no shell, no zombies.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <regex>
#include <tuple>

#include "pbt/store.hpp"
#include "pbt/trainable.hpp"
#include "process_util.hpp"
#include "trainables/external/process.hpp"

using namespace e2e;
using nlohmann::json;

namespace {

const std::string kFake = std::string(PBT_SOURCE_DIR) + "/tests/process/fake_trainer.py";

// Debian's interpreter when there is one (the one python3-torch is installed for).
std::string python() { return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"; }

struct Captured {
  std::vector<std::string> lines;
  std::string all() const {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }
};

pbt::TrainableContext context(int member, Captured& log, json options) {
  pbt::TrainableContext ctx;
  ctx.member = member;
  ctx.seed = 42;
  ctx.options = std::move(options);
  ctx.log = [&log](const std::string& l) { log.lines.push_back(l); };
  return ctx;
}

json fake_options(const std::vector<std::string>& extra, json timeouts = json::object()) {
  std::vector<std::string> argv = {python(), kFake};
  argv.insert(argv.end(), extra.begin(), extra.end());
  json o = {{"argv", argv}};
  if (!timeouts.empty()) o["timeouts"] = timeouts;
  return o;
}

std::unique_ptr<pbt::Trainable> make(int member, Captured& log, const json& options) {
  return pbt::make_trainable("process", context(member, log, options));
}

// Alive, not a zombie.
bool alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// Zombies whose parent is this test process: there must never be any.
int my_zombies() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream in(e.path() / "stat");
    std::string stat;
    if (!std::getline(in, stat)) continue;
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    long ppid;
    rest >> state >> ppid;
    if (state == 'Z' && ppid == getpid()) ++n;
  }
  return n;
}

bool eventually_dead(pid_t pid, double seconds = 5) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (!alive(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return !alive(pid);
}

// Runs fn, expects a pbt::Error, returns its message.
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const pbt::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a pbt::Error";
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

// ---------------------------------------------------------------- the trainable itself

TEST(ProcessTrainable, SpeaksTheProtocolAndKeepsOneChildAcrossCalls) {
  Captured log;
  auto t = make(0, log, fake_options({}));
  auto* pt = dynamic_cast<pbt::ProcessTrainable*>(t.get());
  ASSERT_NE(pt, nullptr);
  const int pid = pt->pid();
  ASSERT_GT(pid, 0);
  t->apply({{"rate", 0.5}});
  t->step(3);
  pbt::Score s = t->eval();
  EXPECT_NEAR(s.value, 1 - std::pow(0.9 * 0.125, 2), 1e-12);
  EXPECT_EQ(s.metrics["steps"], 3);
  pbt::CheckpointWriter w;
  t->save(w);
  EXPECT_FALSE(w.bytes().empty());
  EXPECT_EQ(json::parse(w.bytes())["steps"], 3);
  t->step(2);
  EXPECT_EQ(pt->pid(), pid) << "one child for the whole life of the trainable";

  Captured log2;
  auto u = make(1, log2, fake_options({}));
  std::string bytes = w.bytes();
  pbt::CheckpointReader r(bytes);
  u->load(r);
  EXPECT_EQ(u->eval().value, s.value) << "the checkpoint file went through the engine intact";
  EXPECT_TRUE(contains(log.all(), "trainer: fake[0]: started")) << log.all();
  EXPECT_TRUE(contains(log2.all(), "trainer: fake[1]: started")) << "PBT_MEMBER reaches the child: " << log2.all();
}

TEST(ProcessTrainable, DestroyingItStopsTheChildAndLeavesNoZombie) {
  Captured log;
  int pid;
  {
    auto t = make(0, log, fake_options({}));
    pid = dynamic_cast<pbt::ProcessTrainable*>(t.get())->pid();
    t->step(1);
    ASSERT_TRUE(alive(pid));
  }
  EXPECT_FALSE(alive(pid));
  EXPECT_EQ(my_zombies(), 0);
  EXPECT_TRUE(contains(log.all(), "fake[0]: shutting down")) << "asked politely first: " << log.all();
}

TEST(ProcessTrainable, ACrashInStepIsAnErrorNamingMemberOperationCauseAndStderr) {
  Captured log;
  auto t = make(3, log, fake_options({"--mode", "crash"}));
  std::string e = error_of([&] { t->step(2); });
  EXPECT_TRUE(contains(e, "member 3")) << e;
  EXPECT_TRUE(contains(e, "step (n=2)")) << e;
  EXPECT_TRUE(contains(e, "killed by signal 11")) << e;
  EXPECT_TRUE(contains(e, "about to crash in step")) << "stderr tail in the message: " << e;
  EXPECT_TRUE(contains(log.all(), "trainer: fake[3]: about to crash")) << log.all();
  EXPECT_EQ(dynamic_cast<pbt::ProcessTrainable*>(t.get())->pid(), -1);
  EXPECT_TRUE(contains(error_of([&] { t->eval(); }), "not running")) << "later calls fail fast";
  EXPECT_EQ(my_zombies(), 0);
}

TEST(ProcessTrainable, AHangIsKilledWithItsProcessGroupAtTheTimeLimit) {
  Captured log;
  std::string dir = temp_dir("proc-hang");
  auto t = make(1, log, fake_options({"--mode", "hang", "--state-dir", dir}, {{"step", 1.0}}));
  const int pid = dynamic_cast<pbt::ProcessTrainable*>(t.get())->pid();
  auto start = std::chrono::steady_clock::now();
  std::string e = error_of([&] { t->step(1); });
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(took, 0.9);
  EXPECT_LT(took, 5.0) << "killed at the limit, not later";
  EXPECT_TRUE(contains(e, "member 1")) << e;
  EXPECT_TRUE(contains(e, "step (n=1): timed out after 1 s")) << e;
  EXPECT_TRUE(contains(e, "hanging in step")) << e;
  EXPECT_FALSE(alive(pid));
  const pid_t grandchild = std::stoi(read_file(dir + "/grandchild-1-1"));
  EXPECT_TRUE(eventually_dead(grandchild)) << "the helper it started went with its process group";
  EXPECT_EQ(my_zombies(), 0);
}

namespace {

// The pids a --spawn trainer wrote, once all its descendants run (empty after the deadline).
std::vector<pid_t> descendants_in(const std::string& file, double seconds = 60) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    std::string text = read_file(file);
    if (contains(text, "complete\n")) {
      std::vector<pid_t> pids;
      std::istringstream in(text);
      std::string l;
      while (std::getline(in, l))
        if (l != "complete") pids.push_back(std::stoi(l));
      return pids;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return {};
}

}  // namespace

// A grandchild in the trainer's group, one that called setsid() and a double-forked
// daemon: none outlives the trainable (a polite end, then the guard kills what is left).
TEST(ProcessTrainable, NothingTheTrainerStartedSurvivesItsEnd) {
  std::string dir = temp_dir("proc-desc-end");
  Captured log;
  std::vector<pid_t> pids;
  int pid;
  {
    auto t = make(0, log, fake_options({"--spawn", "--state-dir", dir}));
    pid = dynamic_cast<pbt::ProcessTrainable*>(t.get())->pid();
    t->step(1);
    pids = descendants_in(dir + "/descendants-0-1");
    ASSERT_EQ(pids.size(), 3u) << log.all();
    for (pid_t p : pids) ASSERT_TRUE(alive(p)) << p;
  }
  EXPECT_FALSE(alive(pid));
  for (pid_t p : pids) EXPECT_TRUE(eventually_dead(p, 60)) << "descendant " << p << " survived";
  EXPECT_EQ(my_zombies(), 0);
  std::filesystem::remove_all(dir);
}

TEST(ProcessTrainable, NothingTheTrainerStartedSurvivesATimeout) {
  std::string dir = temp_dir("proc-desc-timeout");
  Captured log;
  // Long enough for the descendants to start on a slow machine: the file says when they run.
  auto t = make(0, log, fake_options({"--spawn", "--mode", "hang", "--state-dir", dir}, {{"step", 10.0}}));
  std::string e = error_of([&] { t->step(1); });
  EXPECT_TRUE(contains(e, "timed out after 10 s")) << e;
  std::vector<pid_t> pids = descendants_in(dir + "/descendants-0-1", 1);
  ASSERT_EQ(pids.size(), 3u) << log.all();
  pids.push_back(std::stoi(read_file(dir + "/grandchild-0-1")));
  for (pid_t p : pids) EXPECT_TRUE(eventually_dead(p, 60)) << "descendant " << p << " survived";
  EXPECT_EQ(my_zombies(), 0);
  std::filesystem::remove_all(dir);
}

// A trainer that exits while a process it started holds its stdout: the engine learns of
// the exit at once (from the guard), not at the end of the operation's time limit.
TEST(ProcessTrainable, ATrainerThatExitsWhileAChildHoldsItsStdoutIsReportedAtOnce) {
  Captured log;
  auto t = make(2, log, fake_options({"--mode", "exit_holding"}, {{"step", 100.0}}));
  auto start = std::chrono::steady_clock::now();
  std::string e = error_of([&] { t->step(1); });
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(contains(e, "step (n=1): the trainer exited with code 1 before replying")) << e;
  EXPECT_TRUE(contains(e, "while a child holds stdout")) << e;
  EXPECT_LT(took, 50.0) << "reported when it exits, not at the 100 s limit";
  EXPECT_EQ(my_zombies(), 0);
}

// A worker killed together with its guard leaves its scratch directory behind: the next
// trainer started on this host removes it, and only it (its owner, pid and start time,
// is not running), never a live worker's or another host's.
TEST(ProcessTrainable, AStartRemovesScratchDirectoriesOfDeadWorkersOnly) {
  std::string dir = temp_dir("proc-sweep");
  const std::string scratch = dir + "/scratch";
  Captured log;
  json o = fake_options({});
  o["scratch_dir"] = scratch;
  auto a = make(0, log, o);
  std::string live;
  for (const auto& e : std::filesystem::directory_iterator(scratch)) live = e.path().string();
  ASSERT_NE(live, "");
  std::istringstream owner(read_file(live + "/.pbt-owner"));
  std::string host, pid, start, boot;
  ASSERT_TRUE(owner >> host >> pid >> start >> boot) << read_file(live + "/.pbt-owner");
  EXPECT_EQ(pid, std::to_string(getpid()));
  auto plant = [&](const std::string& name, const std::string& marker) {
    std::filesystem::create_directories(scratch + "/" + name);
    std::ofstream(scratch + "/" + name + "/save-0.ckpt") << "checkpoint bytes";
    if (!marker.empty()) std::ofstream(scratch + "/" + name + "/.pbt-owner") << marker << "\n";
  };
  plant("pbt-member5-dead", host + " " + pid + " 1 " + boot);              // this pid, another start: dead
  plant("pbt-member6-reboot", host + " " + pid + " " + start + " other");  // before a reboot
  plant("pbt-member7-remote", "elsewhere " + pid + " 1 " + boot);          // another host's
  plant("pbt-member8-unmarked", "");
  // Named for its owner (pbt-memberM-HOSTTAG.PID.START.BOOTTAG-XXXXXX) and unmarked: a worker
  // killed between mkdtemp and writing the marker. Same host and boot, this pid, another start.
  const std::string live_name = std::filesystem::path(live).filename().string();
  const auto tag_at = live_name.find('-', 4) + 1;
  const std::string tag = live_name.substr(tag_at, live_name.rfind('-') - tag_at);
  const auto dot1 = tag.find('.'), dot2 = tag.find('.', dot1 + 1), dot3 = tag.find('.', dot2 + 1);
  ASSERT_NE(dot3, std::string::npos) << live_name;
  EXPECT_EQ(tag.substr(dot1 + 1, dot2 - dot1 - 1), pid) << live_name;
  const std::string dead_tagged = "pbt-member9-" + tag.substr(0, dot2) + ".1" + tag.substr(dot3) + "-abcdef";
  plant(dead_tagged, "");
  auto b = make(1, log, o);
  EXPECT_FALSE(std::filesystem::exists(scratch + "/" + dead_tagged)) << "an unmarked directory named for a dead owner";
  EXPECT_FALSE(std::filesystem::exists(scratch + "/pbt-member5-dead"));
  EXPECT_FALSE(std::filesystem::exists(scratch + "/pbt-member6-reboot"));
  EXPECT_TRUE(std::filesystem::exists(scratch + "/pbt-member7-remote"));
  EXPECT_TRUE(std::filesystem::exists(scratch + "/pbt-member8-unmarked"));
  EXPECT_TRUE(std::filesystem::exists(live)) << "a live worker's directory stays";
  a.reset();
  b.reset();
  std::filesystem::remove_all(dir);
}

TEST(ProcessTrainable, GarbageOnStdoutIsAnError) {
  Captured log;
  auto t = make(0, log, fake_options({"--mode", "garbage"}));
  std::string e = error_of([&] { t->step(1); });
  EXPECT_TRUE(contains(e, "not a JSON object")) << e;
  EXPECT_TRUE(contains(e, "\\x00\\xff\\xfe garbage")) << "the bytes are shown, escaped: " << e;
  EXPECT_TRUE(contains(e, "writing garbage")) << e;
  EXPECT_EQ(my_zombies(), 0);
}

TEST(ProcessTrainable, APlainTextLineOnStdoutIsAnError) {
  Captured log;
  auto t = make(0, log, fake_options({"--mode", "not_json"}));
  std::string e = error_of([&] { t->step(1); });
  EXPECT_TRUE(contains(e, "step (n=1): wrote a line on stdout that is not a JSON object: 'step done, loss=0.25'")) << e;
}

TEST(ProcessTrainable, AChildThatExitsAtOnceFailsTheStart) {
  Captured log;
  std::string e = error_of([&] { make(2, log, fake_options({"--mode", "exit", "--after-starts", "0"})); });
  EXPECT_TRUE(contains(e, "member 2")) << e;
  EXPECT_TRUE(contains(e, "start: the trainer exited with code 3 before saying hello")) << e;
  EXPECT_TRUE(contains(e, "exiting at once")) << e;
  EXPECT_EQ(my_zombies(), 0);
}

TEST(ProcessTrainable, NaNFailsTheEvalByDefaultAndRanksLastWhenAskedTo) {
  Captured log;
  auto t = make(0, log, fake_options({"--mode", "nan"}));
  t->step(1);
  std::string e = error_of([&] { t->eval(); });
  EXPECT_TRUE(contains(e, "eval: the trainer returned a non-finite score (nan)")) << e;
  EXPECT_TRUE(contains(e, "returning NaN")) << e;

  json o = fake_options({"--mode", "nan"});
  o["on_non_finite"] = "rank_last";
  auto u = make(0, log, o);
  u->step(1);
  EXPECT_TRUE(std::isnan(u->eval().value)) << "handed to the engine, which ranks it last";
}

TEST(ProcessTrainable, ASaveThatWritesNothingIsAnError) {
  Captured log;
  auto t = make(4, log, fake_options({"--mode", "empty_save"}));
  t->step(1);
  pbt::CheckpointWriter w;
  std::string e = error_of([&] { t->save(w); });
  EXPECT_TRUE(contains(e, "member 4")) << e;
  EXPECT_TRUE(contains(e, "save: the trainer replied ok but wrote nothing")) << e;
  EXPECT_TRUE(w.bytes().empty());
}

TEST(ProcessTrainable, AnErrorInTheTrainerComesWithItsTraceback) {
  Captured log;
  auto t = make(0, log, fake_options({"--mode", "error"}));
  std::string e = error_of([&] { t->step(1); });
  EXPECT_TRUE(contains(e, "the trainer reported an error: ValueError: the learning rate exploded")) << e;
  EXPECT_TRUE(contains(e, "Traceback (most recent call last)")) << e;
  EXPECT_TRUE(contains(log.all(), "trainer traceback: ")) << log.all();
}

// A 4.4 MB traceback: its end is kept (in the error, so in the store, and in the log),
// with the count of what was cut; of the message, its first line.
TEST(ProcessTrainable, AHugeTracebackIsCutToItsEnd) {
  Captured log;
  auto t = make(0, log, fake_options({"--mode", "big_error"}));
  std::string e = error_of([&] { t->step(1); });
  EXPECT_TRUE(contains(e, "the trainer reported an error: RecursionError: too deep ... (100013 bytes cut)"))
      << e.substr(0, 300);
  EXPECT_TRUE(contains(e, "RecursionError: the innermost")) << "the end is kept";
  EXPECT_TRUE(std::regex_search(e, std::regex("\\n\\.\\.\\. \\([0-9]+ bytes cut\\)\\n"))) << e.substr(0, 500);
  EXPECT_LT(e.size(), 16000u) << "cut to about 8 KiB of traceback";
  std::size_t logged = 0;
  for (const auto& l : log.lines) logged += l.size();
  EXPECT_LT(logged, 20000u) << "the log gets the cut traceback too";
  EXPECT_TRUE(contains(log.all(), "trainer traceback: RecursionError: the innermost")) << log.all().substr(0, 300);
}

// Metrics nested 100,000 deep (200 KB, far under the line limit): refused before any
// parser recurses into them, as a protocol error naming the member and the limit.
TEST(ProcessTrainable, ARecursivelyDeepReplyIsAProtocolErrorNotACrash) {
  Captured log;
  auto t = make(3, log, fake_options({"--mode", "deep"}));
  t->step(1);
  std::string e = error_of([&] { t->eval(); });
  EXPECT_TRUE(contains(e, "member 3")) << e.substr(0, 300);
  EXPECT_TRUE(contains(e,
                       "eval: protocol error: the reply is refused: 'metrics' nests arrays and objects more "
                       "than 64 levels deep"))
      << e.substr(0, 300);
  EXPECT_EQ(dynamic_cast<pbt::ProcessTrainable*>(t.get())->pid(), -1) << "its process group was killed";
  EXPECT_EQ(my_zombies(), 0);
}

TEST(ProcessTrainable, AnotherMajorProtocolVersionIsRefused) {
  Captured log;
  std::string e = error_of([&] { make(0, log, fake_options({"--mode", "version"})); });
  EXPECT_TRUE(contains(e, "speaks protocol version 2.0; this engine speaks version 1.3")) << e;
  EXPECT_EQ(my_zombies(), 0);
}

// A copy is a new member (protocol 1.1): after a load of another member's checkpoint the
// engine sends `copied` with the fresh seed, to a 1.1 trainer only; a 1.0 trainer (which
// would answer an unknown op with an error) never sees it, and the conversation goes on.
TEST(ProcessTrainable, CopiedReachesA11TrainerOnlyAfterLoad) {
  std::string dir = temp_dir("proc-copied");
  pbt::CheckpointWriter w;
  {
    Captured log;
    auto donor = make(2, log, fake_options({}));
    donor->step(4);
    donor->save(w);
  }
  const std::string bytes = w.bytes();
  const pbt::Copied from{2, 40, 0xfedcba9876543210ull};  // a seed past 2^63 travels whole
  auto copied_lines = [](const std::string& path) {
    std::vector<json> out;
    std::istringstream in(read_file(path));
    for (std::string l; std::getline(in, l);) {
      json j = json::parse(l);
      if (j.contains("copied")) out.push_back(j["copied"]);
    }
    return out;
  };
  for (const std::string version : {"1.0", "1.1"}) {
    SCOPED_TRACE(version);
    const std::string echo = dir + "/echo-" + version + ".jsonl";
    Captured log;
    auto t = make(5, log, fake_options({"--protocol", version, "--echo", echo}));
    pbt::CheckpointReader r(bytes);
    t->load(r);
    t->copied(from);
    EXPECT_EQ(t->eval().metrics["steps"], 4) << "requests and replies still pair up";
    auto got = copied_lines(echo);
    if (version == "1.0") {
      EXPECT_TRUE(got.empty()) << read_file(echo);
    } else {
      ASSERT_EQ(got.size(), 1u) << read_file(echo);
      EXPECT_EQ(got[0]["donor"], 2);
      EXPECT_EQ(got[0]["donor_step"], 40);
      EXPECT_EQ(got[0]["seed"].get<std::uint64_t>(), 0xfedcba9876543210ull);
    }
  }
}

// Protocol 1.2: a running trainer that states 1.2 goes on to serve another member (`member`,
// with that member's seed), its stderr then in the new member's log and its errors naming
// the new member; an older one declines, and the worker starts a new process as before.
TEST(ProcessTrainable, AMemberSwitchReachesA12TrainerOnly) {
  std::string dir = temp_dir("proc-member-op");
  for (const std::string version : {"1.1", "1.2"}) {
    SCOPED_TRACE(version);
    const std::string echo = dir + "/echo-" + version + ".jsonl";
    const json options = fake_options({"--protocol", version, "--echo", echo, "--seeded"});
    Captured log0, log3;
    auto t = make(0, log0, options);
    const int pid = dynamic_cast<pbt::ProcessTrainable&>(*t).pid();
    t->step(2);
    pbt::TrainableContext next = context(3, log3, options);
    next.seed = 777;
    const bool switched = t->switch_member(next);
    ASSERT_EQ(switched, version == "1.2");
    if (!switched) {
      EXPECT_EQ(t->eval().metrics["steps"], 2) << "declining leaves the trainer as it was";
      EXPECT_FALSE(contains(read_file(echo), "member_op")) << read_file(echo);
      continue;
    }
    EXPECT_EQ(dynamic_cast<pbt::ProcessTrainable&>(*t).pid(), pid) << "the same process";
    pbt::Score s = t->eval();
    EXPECT_EQ(s.metrics["steps"], 0) << "built afresh for member 3";
    EXPECT_NEAR(s.metrics["theta"].get<double>(), 0.5 + 777 / 2000.0, 1e-12) << "from member 3's seed";
    EXPECT_TRUE(contains(read_file(echo), R"("member_op": {"from": 0, "to": 3, "seed": 777})")) << read_file(echo);
    EXPECT_TRUE(contains(log3.all(), "trainer: fake[3]: now serving member 3 (was 0)")) << log3.all();
    EXPECT_TRUE(contains(log3.all(), "goes on from member 0 to member 3")) << log3.all();
    // Options that differ (another experiment's trainer): a new process, never a switch.
    json other = options;
    other["env"] = {{"X", "1"}};
    EXPECT_FALSE(t->switch_member(context(1, log3, other)));
  }
  // A failed switch is an error naming the new member, the op and the cause.
  Captured log0, log1;
  const json bad =
      fake_options({"--protocol", "1.2", "--mode", "bad_switch", "--bad-member", "1", "--state-dir", dir + "/state"});
  auto t = make(0, log0, bad);
  std::string e = error_of([&] { t->switch_member(context(1, log1, bad)); });
  EXPECT_TRUE(contains(e, "member 1 (trainer: ")) << e;
  EXPECT_TRUE(contains(e, "member (from member 0): the trainer reported an error: RuntimeError: cannot serve member 1"))
      << e;
  EXPECT_TRUE(contains(log1.all(), "refusing to serve member 1")) << "the new member's log: " << log1.all();
}

// A hello that promises sequential saves has the sink told the save file's path before the
// trainer writes it (a store hashes it as it grows), then given the file itself; a hello that
// says nothing, or false, leaves expect_file out; anything else in the field is refused.
TEST(ProcessTrainable, ASequentialSaveIsAnnouncedToTheSinkBeforeTheTrainerWrites) {
  std::string dir = temp_dir("proc-sequential");
  const std::string scratch = dir + "/scratch";
  std::filesystem::create_directories(scratch);
  struct RecordingSink : pbt::CheckpointSink {
    std::vector<std::string> calls;
    void write(const char*, std::size_t) override {}
    void expect_file(const std::string& path) override {
      calls.push_back("expect " + path + (std::filesystem::exists(path) ? " (exists)" : ""));
    }
    void adopt_file(const std::string& path) override { calls.push_back("adopt " + path); }
  };
  for (const std::string extra : {R"({"sequential_save": true})", R"({"sequential_save": false})", "{}"}) {
    SCOPED_TRACE(extra);
    Captured log;
    pbt::TrainableContext ctx = context(0, log, fake_options({"--hello-extra", extra}));
    ctx.scratch_dir = scratch;
    auto t = pbt::make_trainable("process", ctx);
    t->step(1);
    RecordingSink sink;
    pbt::CheckpointWriter w(sink);
    t->save(w);
    ASSERT_FALSE(sink.calls.empty());
    const std::string adopted = sink.calls.back();
    ASSERT_EQ(adopted.rfind("adopt " + scratch + "/pbt-member0-", 0), 0u) << adopted;
    if (contains(extra, "true")) {
      ASSERT_EQ(sink.calls.size(), 2u);
      EXPECT_EQ(sink.calls[0], "expect " + adopted.substr(6)) << "the same path, announced before it existed";
    } else {
      EXPECT_EQ(sink.calls.size(), 1u) << sink.calls[0];
    }
  }
  Captured log;
  const std::string e = error_of([&] {
    make(0, log, fake_options({"--hello-extra", R"({"sequential_save": "yes"})"}))->step(1);
  });
  EXPECT_TRUE(contains(e, R"(the hello's "sequential_save" must be true or false)")) << e;
}

// Checkpoint files without copies: with a store's scratch directory (TrainableContext) the
// trainer's save file is handed to the store's sink whole (it adopts it by rename), and a
// load gets the store's file as a hard link, removed after the reply (the store's stays).
TEST(ProcessTrainable, CheckpointFilesAreAdoptedAndLinkedNotCopied) {
  std::string dir = temp_dir("proc-files");
  const std::string store_dir = dir + "/store", scratch = store_dir + "/scratch";
  std::filesystem::create_directories(scratch);
  struct AdoptingSink : pbt::CheckpointSink {
    std::string dest, adopted, written;
    void write(const char* d, std::size_t n) override { written.append(d, n); }
    void adopt_file(const std::string& path) override {
      adopted = path;
      std::filesystem::rename(path, dest);
    }
  } sink;
  sink.dest = store_dir + "/ckpt-1";
  Captured log;
  pbt::TrainableContext ctx = context(0, log, fake_options({}));
  ctx.scratch_dir = scratch;
  auto t = pbt::make_trainable("process", ctx);
  t->apply({{"rate", 0.5}});
  t->step(3);
  pbt::CheckpointWriter w(sink);
  t->save(w);
  w.flush();
  EXPECT_EQ(sink.adopted.rfind(scratch + "/pbt-member0-", 0), 0u) << sink.adopted;
  EXPECT_TRUE(sink.written.empty()) << "the file was handed over, not read";
  EXPECT_FALSE(std::filesystem::exists(sink.adopted));
  EXPECT_EQ(json::parse(read_file(sink.dest))["steps"], 3);
  EXPECT_EQ(w.size(), std::filesystem::file_size(sink.dest));

  struct LinkingSource : pbt::CheckpointSource {
    std::string file, linked;
    std::uint64_t size() const override { return std::filesystem::file_size(file); }
    std::size_t read(char*, std::size_t) override {
      ADD_FAILURE() << "the bytes were read instead of linked";
      return 0;
    }
    void to_file(const std::string& path) override {
      linked = path;
      std::filesystem::create_hard_link(file, path);
    }
  } source;
  source.file = sink.dest;
  Captured log1;
  pbt::TrainableContext ctx1 = context(1, log1, fake_options({}));
  ctx1.scratch_dir = scratch;
  auto u = pbt::make_trainable("process", ctx1);
  pbt::CheckpointReader r(source);
  u->load(r);
  EXPECT_EQ(u->eval().metrics["steps"], 3);
  EXPECT_EQ(source.linked.rfind(scratch + "/pbt-member1-", 0), 0u) << source.linked;
  EXPECT_FALSE(std::filesystem::exists(source.linked)) << "the link is removed after the reply";
  EXPECT_EQ(std::filesystem::hard_link_count(sink.dest), 1u);
  EXPECT_EQ(json::parse(read_file(sink.dest))["steps"], 3) << "the store's file is intact";

  // The [trainable] option scratch_dir, when set, wins over the store's.
  Captured log2;
  json o = fake_options({});
  o["scratch_dir"] = dir + "/own";
  pbt::TrainableContext ctx2 = context(2, log2, o);
  ctx2.scratch_dir = scratch;
  auto v = pbt::make_trainable("process", ctx2);
  int own = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/own"))
    own += e.path().filename().string().rfind("pbt-member2-", 0) == 0;
  EXPECT_EQ(own, 1);
}

TEST(ProcessTrainable, AMissingProgramOrDirectoryIsNamed) {
  Captured log;
  std::string e = error_of([&] { make(0, log, json{{"argv", {"no-such-program-pbt"}}}); });
  EXPECT_TRUE(contains(e, "'no-such-program-pbt' was not found in PATH")) << e;
  e = error_of([&] { make(0, log, json{{"argv", {python(), kFake}}, {"cwd", "/no/such/dir"}}); });
  EXPECT_TRUE(contains(e, "cannot change to the working directory '/no/such/dir'")) << e;
  EXPECT_EQ(my_zombies(), 0);
}

TEST(ProcessTrainable, NoShellArgvAndHyperparametersArriveLiterally) {
  std::string dir = temp_dir("proc-shell");
  const std::string marker = dir + "/pwned";
  const std::string echo = dir + "/echo.jsonl";
  const std::vector<std::string> nasty = {"$(touch " + marker + ")", "; touch " + marker, "`touch " + marker + "`",
                                          "| touch " + marker, "a b 'c' \"d\" *"};
  std::vector<std::string> extra = {"--echo", echo};
  extra.insert(extra.end(), nasty.begin(), nasty.end());
  Captured log;
  {
    auto t = make(0, log, fake_options(extra));
    t->apply({{"rate", 0.1}, {"act", std::string("relu; touch " + marker + " && $(touch " + marker + ")")}});
    t->step(1);
  }
  auto lines = read_file(echo);
  std::istringstream in(lines);
  std::string first, second;
  std::getline(in, first);
  std::getline(in, second);
  json argv = json::parse(first)["argv"];
  ASSERT_EQ(argv.size(), 1 + 2 + nasty.size());
  for (std::size_t i = 0; i < nasty.size(); ++i) EXPECT_EQ(argv[3 + i], nasty[i]);
  EXPECT_EQ(json::parse(second)["h"]["act"], "relu; touch " + marker + " && $(touch " + marker + ")");
  EXPECT_FALSE(std::filesystem::exists(marker)) << "nothing ran through a shell";
}

TEST(ProcessTrainable, EnvAndCwdReachTheChild) {
  std::string dir = temp_dir("proc-env");
  std::ofstream(dir + "/t.py") << "import json, os, sys\n"
                                  "print(json.dumps({'hello': 't', 'protocol': '1.0'}), flush=True)\n"
                                  "for line in sys.stdin:\n"
                                  "    r = json.loads(line)\n"
                                  "    out = {'id': r['id'], 'ok': True}\n"
                                  "    if r['op'] == 'eval':\n"
                                  "        out.update(score=1.0, metrics={'cwd': os.getcwd(), 'x': os.environ['X'],"
                                  " 'member': os.environ['PBT_MEMBER']})\n"
                                  "    print(json.dumps(out), flush=True)\n";
  Captured log;
  auto t = make(5, log, json{{"argv", {python(), "t.py"}}, {"cwd", dir}, {"env", {{"X", "a value; $HOME"}}}});
  auto s = t->eval();
  EXPECT_EQ(s.metrics["cwd"], std::filesystem::canonical(dir).string());
  EXPECT_EQ(s.metrics["x"], "a value; $HOME");
  EXPECT_EQ(s.metrics["member"], "5");
}

TEST(ProcessTrainable, OptionsAreCheckedWithTheFieldNamed) {
  auto err = [](const json& o) {
    try {
      pbt::check_trainable_options("process", o, "x.toml: trainable");
    } catch (const pbt::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_EQ(err(json::object()), "x.toml: trainable.argv: missing (required)");
  EXPECT_EQ(err(json{{"argv", json::array()}}),
            "x.toml: trainable.argv: must name the program, e.g. argv = [\"python3\", \"train.py\"]");
  EXPECT_EQ(err(json{{"argv", "python3 train.py"}}),
            "x.toml: trainable.argv: expected an array of strings, got a string");
  EXPECT_EQ(err(json{{"argv", {"p"}}, {"timeouts", {{"step", -1}}}}),
            "x.toml: trainable.timeouts.step: must be a number of seconds in (0, 10000000]");
  EXPECT_EQ(err(json{{"argv", {"p"}}, {"timeouts", {{"stepp", 1}}}}), "x.toml: trainable.timeouts.stepp: unknown key");
  EXPECT_EQ(err(json{{"argv", {"p"}}, {"env", {{"N", 3}}}}),
            "x.toml: trainable.env.N: expected a string, got an integer");
  EXPECT_EQ(err(json{{"argv", {"p"}}, {"on_non_finite", "ignore"}}),
            "x.toml: trainable.on_non_finite: must be \"fail\" or \"rank_last\", got \"ignore\"");
  EXPECT_EQ(err(json{{"argv", {"p"}}, {"shell", true}}), "x.toml: trainable.shell: unknown key");
  EXPECT_EQ(err(json{{"argv", {"p"}}, {"cwd", "/tmp"}, {"env", {{"A", "b"}}}, {"timeouts", {{"start", 5}}}}),
            "(accepted)");
}

// ---------------------------------------------------------------- in a real `pbt run`

namespace {

struct RunResult {
  Result cmd;
  bool timed_out = false;
  std::string logs;  // every worker log
};

RunResult run_with_limit(const std::vector<std::string>& args, const std::string& dir, const std::string& run_dir,
                         double limit_s) {
  std::vector<std::string> full = {PBT_BINARY};
  full.insert(full.end(), args.begin(), args.end());
  pid_t pid = spawn(full, dir + "/cmd.out", dir + "/cmd.err");
  RunResult r;
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit_s);
  int status = 0;
  for (;;) {
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() > until) {
      r.timed_out = true;
      kill(pid, SIGTERM);
      std::this_thread::sleep_for(std::chrono::seconds(2));
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  r.cmd.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.cmd.out = read_file(dir + "/cmd.out");
  r.cmd.err = read_file(dir + "/cmd.err");
  if (std::filesystem::exists(run_dir + "/logs"))
    for (const auto& e : std::filesystem::directory_iterator(run_dir + "/logs")) r.logs += read_file(e.path());
  return r;
}

std::string fake_config(const std::string& dir, const std::string& name, const std::vector<std::string>& extra,
                        const std::string& trainable_extra = "", int workers = 2,
                        const std::string& exploit = "truncation", int population = 2) {
  std::string argv = "[\"" + python() + "\", \"" + kFake + "\"";
  for (const auto& a : extra) argv += ", \"" + a + "\"";
  argv += "]";
  std::string path = dir + "/" + name + ".toml";
  std::ofstream(path) << "name = \"" << name << "\"\nseed = 1\npopulation = " << population << "\n"
                      << "[trainable]\nkind = \"process\"\nargv = " << argv << "\n"
                      << trainable_extra << "\n"
                      << R"([budget]
steps = 8
[ready]
interval = 2
eval_every = 1
[exploit]
strategy = ")" << exploit
                      << R"("
[explore]
strategy = "perturb"
[space.rate]
low = 0.05
high = 0.5
[workers]
count = )" << workers << R"(
max_failures = 2
)";
  return path;
}

int count(const std::string& s, const std::string& part) {
  int n = 0;
  for (std::size_t at = s.find(part); at != std::string::npos; at = s.find(part, at + 1)) ++n;
  return n;
}

struct Failure {
  std::string mode;
  std::vector<std::string> extra;  // more fake_trainer arguments
  std::string trainable_extra;     // more [trainable] keys
  std::int64_t published_step;     // where member 1 stays: its last published checkpoint
  std::string cause;               // in the error pbt status shows
  std::string stderr_line;         // the child's stderr, in the worker log
};

std::ostream& operator<<(std::ostream& o, const Failure& f) { return o << f.mode; }

class MisbehavingMember : public ::testing::TestWithParam<Failure> {};

}  // namespace

// Member 1's trainer misbehaves from step 2 on (once its first interval is published);
// member 0's is fine. Each case: member 1's intervals fail cleanly, it stays at its
// last published checkpoint, is retried max_failures (2) times, is marked failed and
// named by `pbt status`; the child's stderr is in the log; member 0 reaches the
// budget; the run ends on its own (exit 1, since a member failed) and leaves no process.
TEST_P(MisbehavingMember, FailsCleanlyWhileThePopulationRunsOn) {
  const Failure& f = GetParam();
  std::string dir = temp_dir("proc-run-" + f.mode);
  std::string run_dir = dir + "/run";
  std::vector<std::string> extra = {"--mode",      f.mode, "--bad-member", "1",
                                    "--bad-after", "2",    "--state-dir",  dir + "/state"};
  extra.insert(extra.end(), f.extra.begin(), f.extra.end());
  // No exploit: member 1 keeps its own checkpoint, so what a retry loads is known.
  std::string cfg = fake_config(dir, "fail_" + f.mode, extra, f.trainable_extra, 2, "none");

  RunResult r = run_with_limit({"run", cfg, "--run", run_dir}, dir, run_dir, 90);
  ASSERT_FALSE(r.timed_out) << "the run hung\n" << r.cmd.out << r.logs;
  EXPECT_EQ(r.cmd.code, 1) << r.cmd.out << r.cmd.err;
  EXPECT_TRUE(contains(r.cmd.out, "1/2 members reached the budget, 1 failed")) << r.cmd.out;

  auto store = pbt::open_store("sqlite:" + run_dir + "/store.db");
  auto pop = store->population("fail_" + f.mode);
  ASSERT_EQ(pop.size(), 2u);
  EXPECT_TRUE(pop[0].done) << "the rest of the population runs on";
  EXPECT_EQ(pop[0].step, 8);
  EXPECT_TRUE(pop[1].failed);
  EXPECT_EQ(pop[1].failures, 2) << "bounded retries: max_failures = 2";
  EXPECT_EQ(pop[1].step, f.published_step) << "nothing of a failed interval is published";
  if (f.published_step > 0) {
    json ckpt = json::parse(store->checkpoint(pop[1].checkpoint));
    EXPECT_EQ(ckpt["steps"], f.published_step) << "its checkpoint is the last one it published";
    // The retry is a fresh trainer that starts from that checkpoint.
    EXPECT_GE(count(r.logs, "member 1: trainer: fake[1]: loaded a checkpoint at steps=2"), 1) << r.logs;
  }
  EXPECT_TRUE(contains(pop[1].last_error, "member 1")) << pop[1].last_error;
  EXPECT_TRUE(contains(pop[1].last_error, f.cause)) << pop[1].last_error;
  EXPECT_EQ(count(r.logs, "member 1 at step " + std::to_string(f.published_step) + ": interval failed"), 2) << r.logs;
  EXPECT_TRUE(contains(r.logs, "member 1: trainer: fake[1]: " + f.stderr_line)) << "the child's stderr is in the log\n"
                                                                                << r.logs;

  auto status = run_pbt({"status", "--run", run_dir}, dir);
  EXPECT_TRUE(contains(status.out, "member 1 FAILED after 2 failed intervals")) << status.out;

  // Every trainer the run started is gone.
  for (const auto& e : std::filesystem::directory_iterator(dir + "/state")) {
    const std::string name = e.path().filename().string();
    if (name.rfind("pid-", 0) == 0 || name.rfind("grandchild-", 0) == 0) {
      EXPECT_TRUE(eventually_dead(std::stoi(read_file(e.path())))) << name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Process, MisbehavingMember,
    ::testing::Values(
        Failure{"crash", {}, "", 2, "step (n=1): the trainer was killed by signal 11", "about to crash in step"},
        Failure{"hang", {}, "timeouts = { step = 1.0 }", 2, "step (n=1): timed out after 1 s", "hanging in step"},
        Failure{"garbage", {}, "", 2, "not a JSON object: '\\x00\\xff\\xfe garbage", "writing garbage"},
        Failure{"not_json", {}, "", 2, "not a JSON object: 'step done, loss=0.25'", "writing plain text"},
        Failure{"exit",
                {"--after-starts", "0"},
                "",
                0,
                "start: the trainer exited with code 3 before saying hello",
                "exiting at once"},
        Failure{"nan", {}, "", 2, "eval: the trainer returned a non-finite score (nan)", "returning NaN"},
        Failure{
            "empty_save", {}, "", 2, "save: the trainer replied ok but wrote nothing", "not writing the checkpoint"},
        Failure{"error", {}, "", 2, "ValueError: the learning rate exploded", "started"}),
    [](const ::testing::TestParamInfo<Failure>& param) { return param.param.mode; });

// A member that stays with its worker keeps its trainer process across intervals; one
// worker serving two members starts a trainer per switch and still ends correctly.
TEST(ProcessRun, ATrainerLivesAcrossIntervalsOfItsMember) {
  std::string dir = temp_dir("proc-keep");
  std::string run_dir = dir + "/run";
  std::string cfg = fake_config(dir, "keep", {"--state-dir", dir + "/state"});
  RunResult r = run_with_limit({"run", cfg, "--run", run_dir}, dir, run_dir, 60);
  ASSERT_FALSE(r.timed_out);
  ASSERT_EQ(r.cmd.code, 0) << r.cmd.out << r.logs;
  // 4 intervals per member, 8 in all. A worker gets its member back, so a trainer serves
  // several intervals: far fewer starts than intervals (2 when both workers join at once;
  // a few more when one joins late under load and the first serves both for a while).
  const int starts = count(r.logs, "started trainer pid");
  EXPECT_GE(starts, 2) << r.logs;
  EXPECT_LE(starts, 5) << r.logs;
  EXPECT_EQ(count(r.logs, "stopped: it exited with code 0"), starts) << "every trainer shut down politely\n" << r.logs;
}

TEST(ProcessRun, OneWorkerForTwoMembersRestartsTheTrainerWhenItSwitches) {
  std::string dir = temp_dir("proc-switch");
  std::string run_dir = dir + "/run";
  std::string cfg = fake_config(dir, "switch", {}, "", /*workers=*/1);
  RunResult r = run_with_limit({"run", cfg, "--run", run_dir}, dir, run_dir, 60);
  ASSERT_FALSE(r.timed_out);
  ASSERT_EQ(r.cmd.code, 0) << r.cmd.out << r.logs;
  auto store = pbt::open_store("sqlite:" + run_dir + "/store.db");
  for (const auto& m : store->population("switch")) {
    EXPECT_TRUE(m.done);
    EXPECT_EQ(json::parse(store->checkpoint(m.checkpoint))["steps"].get<int>() > 0, true);
  }
  // 8 intervals, alternating between the two members: a new trainer for (nearly) each.
  EXPECT_GE(count(r.logs, "started trainer pid"), 4) << r.logs;
  EXPECT_EQ(count(r.logs, "started trainer pid"), count(r.logs, "stopped: it exited with code 0")) << r.logs;
}

// Protocol 1.2: one worker for four members starts one trainer for the whole run, which
// goes from member to member (`member`), each continuing from its own checkpoint: the run
// is the same, checkpoint for checkpoint, as with a 1.1 trainer, restarted at every switch.
TEST(ProcessRun, OneWorkerForFourMembersStartsA12TrainerOnce) {
  std::string dir = temp_dir("proc-member-switch");
  auto run = [&](const std::string& version) {
    const std::string pids = dir + "/pids-" + version;
    std::string cfg = fake_config(dir, "sw" + std::string(version == "1.2" ? "12" : "11"),
                                  {"--protocol", version, "--seeded", "--pid-log", pids}, "", /*workers=*/1,
                                  "truncation", /*population=*/4);
    std::string run_dir = dir + "/run-" + version;
    RunResult r = run_with_limit({"run", cfg, "--run", run_dir}, dir, run_dir, 120);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.cmd.code, 0) << r.cmd.out << r.logs;
    return std::make_tuple(r, count(read_file(pids), "\n"), run_dir);
  };
  auto [r12, starts12, dir12] = run("1.2");
  auto [r11, starts11, dir11] = run("1.1");
  EXPECT_EQ(starts12, 1) << "one trainer process for the whole run\n" << r12.logs;
  EXPECT_EQ(count(r12.logs, "started trainer pid"), 1) << r12.logs;
  EXPECT_GE(count(r12.logs, "goes on from member"), 8) << "16 intervals over 4 members\n" << r12.logs;
  EXPECT_GE(starts11, 8) << "a 1.1 trainer is restarted as before\n" << r11.logs;
  EXPECT_EQ(count(r11.logs, "goes on from member"), 0) << r11.logs;
  EXPECT_EQ(count(r12.logs, "interval failed") + count(r11.logs, "interval failed"), 0) << r12.logs << r11.logs;

  auto s12 = pbt::open_store("sqlite:" + dir12 + "/store.db");
  auto s11 = pbt::open_store("sqlite:" + dir11 + "/store.db");
  auto p12 = s12->population("sw12"), p11 = s11->population("sw11");
  ASSERT_EQ(p12.size(), 4u);
  ASSERT_EQ(p11.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE("member " + std::to_string(i));
    EXPECT_TRUE(p12[i].done);
    EXPECT_EQ(p12[i].step, 8);
    json c12 = json::parse(s12->checkpoint(p12[i].checkpoint));
    json c11 = json::parse(s11->checkpoint(p11[i].checkpoint));
    EXPECT_EQ(c12, c11) << "the model's whole history (digest) is the one a restarted trainer gives";
    ASSERT_TRUE(p12[i].score && p11[i].score);
    EXPECT_EQ(*p12[i].score, *p11[i].score);
    EXPECT_TRUE(c12.contains("digest"));
  }
  EXPECT_EQ(s12->scores("sw12").size(), s11->scores("sw11").size());
  auto all_scores = [](pbt::Store& s, const std::string& name) {
    std::vector<std::tuple<int, std::int64_t, double>> v;
    for (const auto& p : s.scores(name)) v.emplace_back(p.member, p.step, p.score);
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(all_scores(*s12, "sw12"), all_scores(*s11, "sw11")) << "every member's scores, eval for eval";
}

// A trainer whose `member` fails: that interval fails (the trainer is ended), the next one
// runs on a new process, and the run ends correctly.
TEST(ProcessRun, AFailedMemberSwitchFailsTheIntervalAndANewTrainerGoesOn) {
  std::string dir = temp_dir("proc-bad-switch");
  std::string run_dir = dir + "/run";
  const std::string pids = dir + "/pids";
  std::string cfg = fake_config(dir, "badsw",
                                {"--protocol", "1.2", "--mode", "bad_switch", "--bad-member", "1", "--state-dir",
                                 dir + "/state", "--pid-log", pids},
                                "", /*workers=*/1, "truncation", /*population=*/2);
  RunResult r = run_with_limit({"run", cfg, "--run", run_dir}, dir, run_dir, 90);
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.cmd.code, 0) << r.cmd.out << r.logs;
  EXPECT_EQ(read_file(dir + "/state/bad-switches"), "1");
  EXPECT_EQ(count(r.logs, "interval failed"), 1) << r.logs;
  EXPECT_TRUE(contains(r.logs,
                       "member (from member 0): the trainer reported an error: RuntimeError: cannot serve "
                       "member 1"))
      << r.logs;
  EXPECT_EQ(count(read_file(pids), "\n"), 2) << "a new trainer after the failure, and only then\n" << r.logs;
  EXPECT_GE(count(r.logs, "goes on from member"), 3) << "the new trainer switches members again\n" << r.logs;
  auto store = pbt::open_store("sqlite:" + run_dir + "/store.db");
  for (const auto& m : store->population("badsw")) {
    EXPECT_TRUE(m.done);
    EXPECT_EQ(m.step, 8);
    EXPECT_FALSE(m.failed);
  }
}

// A `pbt worker` SIGKILLed in the middle of a step: its trainer, everything the trainer
// started (in its group, setsid'd, double-forked) and its scratch directory all go.
TEST(ProcessRun, AKilledWorkerLeavesNoProcessAndNoScratchDirectory) {
  std::string dir = temp_dir("proc-worker-kill");
  std::string run_dir = dir + "/run", scratch = dir + "/scratch", state = dir + "/state";
  std::string cfg = fake_config(dir, "wkill", {"--spawn", "--mode", "hang", "--state-dir", state},
                                "scratch_dir = \"" + scratch + "\"\ntimeouts = { step = 600.0 }");
  ASSERT_EQ(run_pbt({"create", cfg, "--run", run_dir}, dir).code, 0);
  pid_t worker = spawn({PBT_BINARY, "worker", "--store", "sqlite:" + run_dir + "/store.db", "--experiment", "wkill"},
                       dir + "/worker.out", dir + "/worker.err");
  // Whichever member the worker took: wait until its trainer's descendants all run.
  std::vector<pid_t> pids;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (pids.empty() && std::chrono::steady_clock::now() < until) {
    if (std::filesystem::exists(state))
      for (const auto& e : std::filesystem::directory_iterator(state))
        if (e.path().filename().string().rfind("descendants-", 0) == 0) pids = descendants_in(e.path().string(), 5);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(pids.size(), 3u) << read_file(dir + "/worker.err");
  for (const auto& e : std::filesystem::directory_iterator(state)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("pid-", 0) == 0 || name.rfind("grandchild-", 0) == 0) pids.push_back(std::stoi(read_file(e.path())));
  }
  ASSERT_EQ(pids.size(), 5u) << "the trainer and its hang helper too";
  int scratch_dirs = 0;
  for (const auto& e : std::filesystem::directory_iterator(scratch))
    scratch_dirs += e.path().filename().string().rfind("pbt-member", 0) == 0;
  ASSERT_EQ(scratch_dirs, 1);

  kill(worker, SIGKILL);
  waitpid(worker, nullptr, 0);
  for (pid_t p : pids) EXPECT_TRUE(eventually_dead(p, 60)) << "process " << p << " survived its worker";
  auto scratch_left = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(scratch))
      n += e.path().filename().string().rfind("pbt-member", 0) == 0;
    return n;
  };
  until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (scratch_left() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(scratch_left(), 0) << "the scratch directory of a killed worker is removed";
  std::filesystem::remove_all(dir);
}

// The stdlib-only example trainer (python/pbt_trainer.py) under a real `pbt run`.
TEST(ProcessRun, TheStdlibExampleRunsEndToEnd) {
  std::string dir = temp_dir("proc-example");
  std::string run_dir = dir + "/run";
  // The example's argv is relative to the repository root: run from there, with the
  // interpreter the other tests use.
  std::string cfg = read_file(std::string(PBT_SOURCE_DIR) + "/examples/python/toy.toml");
  const std::string from = "argv = [\"python3\"";
  ASSERT_NE(cfg.find(from), std::string::npos);
  cfg.replace(cfg.find(from), from.size(), "argv = [\"" + python() + "\"");
  std::ofstream(dir + "/toy.toml") << cfg;
  std::vector<std::string> full = {PBT_BINARY, "run", dir + "/toy.toml", "--run", run_dir};
  pid_t pid = spawn(full, dir + "/cmd.out", dir + "/cmd.err", PBT_SOURCE_DIR);
  int code = wait_exit(pid);
  std::string out = read_file(dir + "/cmd.out");
  ASSERT_EQ(code, 0) << out << read_file(dir + "/cmd.err");
  EXPECT_TRUE(contains(out, "finished: experiment 'python_toy', 4/4 members reached the budget")) << out;
  auto best = run_pbt({"best", "--run", run_dir, "--json"}, dir);
  ASSERT_EQ(best.code, 0) << best.err;
  json b = json::parse(best.out);
  EXPECT_GT(b["score"].get<double>(), 1.15) << "PBT gets close to the optimum 1.2: " << best.out;
  EXPECT_TRUE(b["metrics"].contains("theta0")) << best.out;
}

// The PyTorch example (examples/python/digits.toml, shrunk to seconds): Debian's
// python3-torch and python3-sklearn must be installed (scripts/setup.sh does).
TEST(ProcessRun, TheDigitsExampleTrainsAndReportsHeldOutAccuracy) {
  ASSERT_EQ(std::system("/usr/bin/python3 -c 'import torch, sklearn' 2>/dev/null"), 0)
      << "python3-torch and python3-sklearn are missing: run scripts/setup.sh";
  std::string dir = temp_dir("proc-digits");
  std::string run_dir = dir + "/run";
  std::string cfg = read_file(std::string(PBT_SOURCE_DIR) + "/examples/python/digits.toml");
  auto replace = [&](const std::string& from, const std::string& to) {
    auto at = cfg.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    cfg.replace(at, from.size(), to);
  };
  replace("population = 8", "population = 4");
  replace("steps = 3000", "steps = 400");
  replace("interval = 150", "interval = 100");
  replace("count = 8", "count = 4");
  std::ofstream(dir + "/digits.toml") << cfg;
  std::vector<std::string> full = {PBT_BINARY, "run", dir + "/digits.toml", "--run", run_dir};
  pid_t pid = spawn(full, dir + "/cmd.out", dir + "/cmd.err", PBT_SOURCE_DIR);
  int code = wait_exit(pid);
  std::string out = read_file(dir + "/cmd.out");
  ASSERT_EQ(code, 0) << out << read_file(dir + "/cmd.err");
  EXPECT_TRUE(contains(out, "4/4 members reached the budget")) << out;
  auto best = run_pbt({"best", "--run", run_dir}, dir);
  ASSERT_EQ(best.code, 0) << best.err;
  EXPECT_TRUE(std::regex_search(best.out, std::regex("metrics: .*\"test_acc\":0\\.(8|9)"))) << best.out;
  auto j = json::parse(run_pbt({"best", "--run", run_dir, "--json"}, dir).out);
  EXPECT_GT(j["score"].get<double>(), 0.85) << "validation accuracy after 400 steps";
  EXPECT_GT(j["metrics"]["test_acc"].get<double>(), 0.8) << "held-out test accuracy";
}
