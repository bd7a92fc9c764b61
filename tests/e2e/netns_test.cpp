// Many hosts: workers in separate network namespaces (each its own address, reaching the
// PostgreSQL server over a virtual link) share one population; one host's workers are
// killed mid-run and the other host finishes the population.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "pbt/store.hpp"
#include "common/toy_config.hpp"
#include "process_util.hpp"
#include "run_checks.hpp"

using namespace e2e;

namespace {

int sh(const std::string& cmd) { return system(cmd.c_str()); }

// Two namespaces, each linked to this one by a veth pair: host a is 10.213.1.2 and sees
// the server at 10.213.1.1, host b is 10.213.2.2 and sees it at 10.213.2.1.
struct Hosts {
  std::string tag;
  bool up = false;
  std::string ns(char h) const { return "pbt" + tag + h; }
  std::string why;
  bool create() {
    for (char h : {'a', 'b'}) {
      const std::string n = ns(h), subnet = h == 'a' ? "1" : "2";
      const std::string outer = "v" + tag + h + "o", inner = "v" + tag + h + "i";
      const std::string cmds[] = {
          "ip netns add " + n,
          "ip link add " + outer + " type veth peer name " + inner,
          "ip link set " + inner + " netns " + n,
          "ip addr add 10.213." + subnet + ".1/24 dev " + outer,
          "ip link set " + outer + " up",
          "ip netns exec " + n + " ip addr add 10.213." + subnet + ".2/24 dev " + inner,
          "ip netns exec " + n + " ip link set " + inner + " up",
          "ip netns exec " + n + " ip link set lo up",
      };
      for (const auto& c : cmds)
        if (sh(c + " 2>/dev/null") != 0) {
          why = "cannot create network namespaces here ('" + c + "' failed)";
          return false;
        }
      up = true;
    }
    return true;
  }
  ~Hosts() {
    for (char h : {'a', 'b'}) {
      sh("ip netns del " + ns(h) + " 2>/dev/null");  // takes its end of the veth pair with it
      sh("ip link del v" + tag + h + "o 2>/dev/null");
    }
  }
};

struct Server {
  std::string script = std::string(PBT_SOURCE_DIR) + "/scripts/pg-server.sh";
  std::string dir;
  int port = 0;
  bool running = false;
  ~Server() {
    if (running) sh(script + " stop " + dir + " >/dev/null 2>&1");
  }
};

}  // namespace

TEST(ManyHosts, KillingOneHostsWorkersLeavesTheOthersToFinish) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces";
  if (sh("command -v ip >/dev/null 2>&1") != 0) GTEST_SKIP() << "no `ip` command (Debian's iproute2)";
  Hosts hosts;
  hosts.tag = std::to_string(getpid() % 100000);
  if (!hosts.create()) GTEST_SKIP() << hosts.why;

  Server pg;
  pg.dir = temp_dir("netns-pg");
  pg.port = 20000 + getpid() % 20000;
  ASSERT_EQ(sh(pg.script + " start " + pg.dir + " " + std::to_string(pg.port) + " >/dev/null"), 0)
      << "could not start PostgreSQL (Debian's postgresql package; scripts/setup.sh installs it)";
  pg.running = true;
  // Let the server listen on the two links too, and trust the two hosts.
  std::ofstream(pg.dir + "/data/postgresql.conf", std::ios::app)
      << "listen_addresses = '127.0.0.1,10.213.1.1,10.213.2.1'\n";
  std::ofstream(pg.dir + "/data/pg_hba.conf", std::ios::app) << "host all all 10.213.0.0/16 trust\n";
  ASSERT_EQ(sh(pg.script + " restart " + pg.dir + " >/dev/null"), 0);

  std::string dir = temp_dir("netns");
  const std::string port = std::to_string(pg.port);
  // Each worker holds its member after 12 steps (three intervals published) while `pause`
  // exists: the kill below lands mid-run however slow the machine.
  const std::string pause = dir + "/pause";
  std::ofstream(pause) << "";
  std::ofstream(dir + "/hosts.toml") << pbt::test::ToyConfig("hosts")
                                            .seed(3)
                                            .population(6)
                                            .sleep_ms(10)
                                            .pause(12, pause)
                                            .steps(60)
                                            .set("ready.eval_every", "1")
                                            .lease_seconds("1.5")
                                            .store("postgresql://postgres@127.0.0.1:" + port + "/postgres")
                                            .text();
  auto created = run_pbt({"create", dir + "/hosts.toml", "--run", dir + "/run"}, dir);
  ASSERT_EQ(created.code, 0) << created.out << created.err;

  std::map<char, std::vector<pid_t>> workers;
  for (char h : {'a', 'b'})
    for (int i = 0; i < 2; ++i) {
      const std::string uri =
          "postgresql://postgres@10.213." + std::string(h == 'a' ? "1" : "2") + ".1:" + port + "/postgres";
      const std::string log = dir + "/" + h + std::to_string(i);
      workers[h].push_back(
          spawn({"/usr/bin/env", "ip", "netns", "exec", hosts.ns(h), PBT_BINARY, "worker", "--store", uri,
                 "--experiment", "hosts", "--id", std::string("host-") + h + "-" + std::to_string(i)},
                log + ".out", log + ".err"));
    }

  // Wait until host a holds a member mid-run, then kill every worker on host a.
  auto store = pbt::open_store("postgresql://postgres@127.0.0.1:" + port + "/postgres");
  bool a_holds = false;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(180);
       !a_holds && std::chrono::steady_clock::now() < until;) {
    for (const auto& m : store->population("hosts"))
      a_holds |= m.owner.rfind("host-a-", 0) == 0 && m.step >= 4 && m.step < 60 && m.lease_expires > store->now();
    if (!a_holds) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  if (!a_holds) std::filesystem::remove(pause);  // no worker left waiting at the pause
  ASSERT_TRUE(a_holds) << "host a never held a member mid-run";
  for (pid_t p : workers['a']) kill(p, SIGKILL);
  for (pid_t p : workers['a']) EXPECT_EQ(wait_exit(p), 128 + SIGKILL);
  std::filesystem::remove(pause);
  for (std::size_t i = 0; i < workers['b'].size(); ++i)
    EXPECT_EQ(wait_exit(workers['b'][i]), 0) << read_file(dir + "/b" + std::to_string(i) + ".err");

  // Host b finished everything; each step of each member was published exactly once.
  expect_complete_and_exactly_once(*store, "hosts", 6, 60);
  // Both hosts published: the run really was shared across the link.
  std::set<std::string> hosts_seen;
  for (const auto& e : store->events("hosts")) hosts_seen.insert(e.worker.substr(0, 6));
  EXPECT_TRUE(hosts_seen.count("host-b")) << "no event from host b";
}
