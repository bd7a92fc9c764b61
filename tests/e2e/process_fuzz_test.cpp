// A structure-aware fuzzer for the process protocol: seeded mutations of the lines real
// trainers write (tests/process/fake_trainer.py, python/pbt_trainer.py), fed to the code
// the worker reads a trainer's lines with (pbt::protocol), and a few hundred through a
// real child process and the real ProcessTrainable. Every line is either accepted or
// refused with a clean pbt::Error: never a crash, a hang or another exception, and
// never a process left behind. PBT_FUZZ_CASES sets the number of in-process cases
// (default 10,000; the process cases are a fortieth of it, at least 100).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <random>

#include "pbt/trainable.hpp"
#include "process_util.hpp"
#include "trainables/external/process.hpp"

using namespace e2e;
using nlohmann::json;

namespace {

const std::string kReplay = std::string(PBT_SOURCE_DIR) + "/tests/process/replay_trainer.py";

std::string python() { return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"; }

long fuzz_cases() {
  const char* v = std::getenv("PBT_FUZZ_CASES");
  long n = v ? std::atol(v) : 10000;
  return n > 0 ? n : 10000;
}

enum class Role { Hello, Ok, Eval };

struct Seed {
  Role role;
  json line;
};

// What the trainers write, as they write it (the id is set per use).
std::vector<Seed> seeds() {
  return {
      {Role::Hello, json::parse(R"({"hello": "fake_trainer", "protocol": "1.0"})")},
      {Role::Hello, json::parse(R"({"hello":"toy.py","protocol":"1.0","pid":4242})")},
      {Role::Ok, json::parse(R"({"id": 1, "ok": true})")},
      {Role::Eval, json::parse(R"({"id": 1, "ok": true, "score": 0.19, "metrics": {"theta": 0.9, "steps": 3}})")},
      {Role::Eval, json::parse(R"({"id":1,"ok":true,"score":"NaN","samples":[0.5,"Infinity",null,"-Infinity"],)"
                               R"("metrics":{"loss":"NaN","acc":[0.1,0.2],"name":"run"}})")},
      {Role::Ok, json::parse(R"({"id": 1, "ok": false, "error": "ValueError: the learning rate exploded at step 2",)"
                             R"( "traceback": "Traceback (most recent call last):\n  File \"fake_trainer.py\", line )"
                             R"(117, in <module>\n    raise ValueError(\"x\")\nValueError: x\n"})")},
      {Role::Ok, json::parse(R"({"id":null,"ok":false,"error":"ProtocolError: unreadable request: x"})")},
  };
}

// One mutation of a JSON value, somewhere in it.
json mutate_value(const json& v, std::mt19937_64& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  switch (pick(10)) {
    case 0: return json();
    case 1: return pick(2) == 0;
    case 2: {
      static const double nums[] = {0.0, -0.0, 1e308, -1e308, 5e-324, 1e-320, 3.5, -1.0};
      return nums[pick(8)];
    }
    case 3: {
      static const std::int64_t ints[] = {0, 1, 2, -1, INT64_MAX, INT64_MIN, 4294967297LL};
      return ints[pick(7)];
    }
    case 4: return std::numeric_limits<std::uint64_t>::max();
    case 5: {
      static const char* strs[] = {
          "",        "NaN", "nan", "Infinity", "-Infinity", "inf", "1.0", "2.0", "\xc3\xa9\xe2\x82\xac",
          "\\u0000", "\n",  "ok"};
      return strs[pick(12)];
    }
    case 6: return std::string(static_cast<std::size_t>(1) << (10 + pick(11)), 'x');  // 1 KiB .. 1 MiB
    case 7: return json::array({v, v});
    case 8: return json{{"k", v}};
    default: {
      json deep = v;
      const int levels = pick(8) == 0 ? 200 : pick(70);
      for (int i = 0; i < levels; ++i) deep = pick(2) ? json::array({deep}) : json{{"d", deep}};
      return deep;
    }
  }
}

// A mutated copy of a seed's line, as text.
std::string mutate(const Seed& seed, std::int64_t id, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  json j = seed.line;
  if (j.contains("id")) j["id"] = id;
  const std::size_t structural = pick(3);  // 0, 1 or 2 changes to the structure first
  for (std::size_t i = 0; i < structural; ++i) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : j.items()) keys.push_back(k);
    switch (pick(4)) {
      case 0:  // a field of another type or value, or nested deeper
        if (!keys.empty()) {
          const std::string k = keys[pick(keys.size())];
          j[k] = mutate_value(j[k], rng);
        }
        break;
      case 1:  // a field missing
        if (!keys.empty()) j.erase(keys[pick(keys.size())]);
        break;
      case 2:  // an extra field
        j["extra" + std::to_string(pick(3))] = mutate_value(json(1), rng);
        break;
      default:  // a field inside metrics/samples
        if (j.contains("metrics") && j["metrics"].is_object()) j["metrics"]["m"] = mutate_value(json(0.5), rng);
        if (j.contains("samples") && j["samples"].is_array()) j["samples"].push_back(mutate_value(json(0.5), rng));
        break;
    }
  }
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  switch (pick(16)) {                                // then, often, a change to the text
    case 0: return s.substr(0, pick(s.size() + 1));  // truncated
    case 1: {                                        // random bytes replaced
      for (std::size_t n = 1 + pick(4); n > 0 && !s.empty(); --n) s[pick(s.size())] = static_cast<char>(rng());
      return s;
    }
    case 2: {  // random bytes inserted
      std::string junk;
      for (std::size_t n = 1 + pick(8); n > 0; --n) junk += static_cast<char>(rng());
      return s.insert(pick(s.size() + 1), junk);
    }
    case 3: {  // invalid UTF-8 inside a string
      const auto q = s.find('"');
      static const char* bad[] = {"\xff", "\xc3", "\xed\xa0\x80", "\xc0\xaf", "\xf8\x88\x80\x80\x80"};
      return q == std::string::npos ? s + bad[pick(5)] : s.insert(q + 1, bad[pick(5)]);
    }
    case 4: return "{\"id\": " + std::to_string(id + 1) + ", " + s.substr(1);  // a duplicate key
    case 5: return "";                                                         // an empty line
    case 6: return s + s;                                                      // two objects on a line
    case 7: return s + " " + s;
    case 8: {  // NaN and infinity as bare words (not JSON)
      static const char* words[] = {"NaN", "Infinity", "-Infinity", "nan", "1e999", "-1e999", "01", "1.", ".5"};
      const auto colon = s.rfind(':');
      return colon == std::string::npos ? s : s.substr(0, colon + 1) + words[pick(9)] + "}";
    }
    case 9: return std::string(100000, '[') + s;                          // deep, unbalanced
    case 10: return "{\"a\":" + std::string(100000, '{') + s;             // deep objects
    case 11: return s.substr(0, s.size() - 1) + ", \"x\": \"\\ud800\"}";  // a lone surrogate
    default: return s;                                                    // the structural changes only
  }
}

// What the worker does with a line in this role; true when it was accepted.
bool read_as(Role role, const std::string& line, std::int64_t id) {
  if (role == Role::Hello) {
    pbt::protocol::check_hello(line);
    return true;
  }
  json j = pbt::protocol::parse_reply(line, id);
  if (role == Role::Eval) {
    pbt::Score s = pbt::protocol::read_eval(j);
    (void)s.metrics.dump();  // as the store will
  }
  return true;
}

std::string shown(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < 200; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) out += static_cast<char>(c);
    else out += "\\x" + std::string(1, "0123456789abcdef"[c >> 4]) + "0123456789abcdef"[c & 15];
  }
  return out + (s.size() > 200 ? "... (" + std::to_string(s.size()) + " bytes)" : "");
}

}  // namespace

TEST(ProcessFuzz, EveryMutatedLineIsAcceptedOrACleanError) {
  const auto all = seeds();
  std::mt19937_64 rng(20261129);
  const long n = fuzz_cases();
  long accepted = 0, refused = 0;
  for (long i = 0; i < n; ++i) {
    const Seed& seed = all[static_cast<std::size_t>(rng() % all.size())];
    const std::string line = mutate(seed, 1, rng);
    try {
      read_as(seed.role, line, 1) ? ++accepted : ++refused;
    } catch (const pbt::Error& e) {
      ++refused;
      ASSERT_NE(std::string(e.what()), "") << "case " << i;
    } catch (const std::exception& e) {
      FAIL() << "case " << i << ": " << e.what() << " (not a pbt::Error) for the line " << shown(line);
    }
  }
  std::cout << n << " cases: " << accepted << " accepted, " << refused << " refused\n";
  EXPECT_GT(accepted, n / 20) << "the mutations keep some lines valid";
  EXPECT_GT(refused, n / 5);
}

// The seeds themselves are all accepted (the fuzzer starts from valid lines).
TEST(ProcessFuzz, TheSeedsAreValid) {
  for (const auto& seed : seeds()) {
    std::string line = seed.line.dump();
    if (seed.line.contains("id") && !seed.line["id"].is_null()) {
      if (seed.line["ok"] == false) {
        EXPECT_THROW(read_as(seed.role, line, 1), pbt::protocol::TrainerError) << line;
        continue;
      }
    }
    if (seed.line.contains("id") && seed.line["id"].is_null()) continue;  // pbt_trainer's reply to garbage
    EXPECT_TRUE(read_as(seed.role, line, 1)) << line;
  }
}

// Through real child processes and the real ProcessTrainable: each case ends as a
// result or a clean pbt::Error, with the child gone and no zombie.
TEST(ProcessFuzz, MutatedLinesFromARealChildFailCleanly) {
  const auto all = seeds();
  std::mt19937_64 rng(7);
  const long n = std::max(100L, fuzz_cases() / 40);
  const std::string dir = temp_dir("proc-fuzz");
  const std::string cases = dir + "/cases.bin";
  std::vector<Role> roles;
  {
    std::ofstream out(cases, std::ios::binary);
    for (long i = 0; i < n; ++i) {
      // Hellos, or eval replies (init is request 1, the eval request 2).
      std::vector<const Seed*> pool;
      const bool hello = i % 4 == 0;
      for (const auto& s : all)
        if ((s.role == Role::Hello) == hello) pool.push_back(&s);
      const Seed& seed = *pool[static_cast<std::size_t>(rng() % pool.size())];
      std::string line = mutate(seed, 2, rng);
      if (line.size() > 300000) line.resize(300000);  // keep the file small: depth is what matters here
      out << line.size() << "\n" << line << "\n";
      roles.push_back(hello ? Role::Hello : Role::Eval);
    }
  }
  long results = 0, errors = 0;
  for (long i = 0; i < n; ++i) {
    pbt::TrainableContext ctx;
    ctx.member = 0;
    ctx.seed = 1;
    ctx.options = {{"argv", {python(), kReplay, cases, std::to_string(i), roles[i] == Role::Hello ? "hello" : "eval"}},
                   {"scratch_dir", dir + "/scratch"}};
    ctx.log = [](const std::string&) {};
    int pid = -1;
    try {
      auto t = pbt::make_trainable("process", ctx);
      pid = dynamic_cast<pbt::ProcessTrainable*>(t.get())->pid();
      if (roles[i] == Role::Eval) t->eval();
      ++results;
    } catch (const pbt::Error&) {
      ++errors;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "case " << i << ": not a pbt::Error: " << e.what();
    }
    if (pid > 0) {
      std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
      std::string s;
      EXPECT_FALSE(std::getline(stat, s) && s.find(") Z") == std::string::npos) << "case " << i << ": child left";
    }
  }
  std::cout << n << " process cases: " << results << " results, " << errors << " clean errors\n";
  EXPECT_GT(errors, 0);
  EXPECT_GT(results, 0);
  int left = 0;
  if (std::filesystem::exists(dir + "/scratch"))
    for (const auto& e : std::filesystem::directory_iterator(dir + "/scratch")) (void)e, ++left;
  EXPECT_EQ(left, 0) << "every scratch directory removed";
  std::filesystem::remove_all(dir);
}
