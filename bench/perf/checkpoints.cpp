// Large checkpoints (issue #17): publish and exploit throughput, the worker's peak memory and
// the store's size on disk for checkpoints of 1 MB to 1 GB, beside what the machine itself
// does (a write with fsync, a plain file copy) measured in the same run.
//
//   checkpoints [--sizes 1,100,1000] [--reps 3] [--dir DIR] [--postgres URI] [--paths cpp,process,sequential]
//               [--python PATH] [--root .] [--out FILE]
//
// Sizes are in MB (10^6 bytes). Run it from the repository root (or give --root): the process
// path starts bench/perf/ballast_trainer.py. DIR (default: a new directory under the current
// one, so on the repository's disk, not on a tmpfs /tmp) holds the SQLite store, PostgreSQL's
// checkpoint_dir and the baseline files; it is removed at the end.
//
// Two paths, both driven through the store API as src/core/worker.cpp drives it:
//  - cpp: a trainable whose model is N bytes generated in 1 MiB chunks as save() writes them
//    and checked chunk by chunk as load() reads them (never held whole);
//  - process: the real ProcessTrainable with bench/perf/ballast_trainer.py, which writes N
//    bytes to the file it is given and reads the file it is given;
//  - sequential: the same, with a trainer whose hello promises sequential saves, so the store
//    hashes its file while it is written (CheckpointSink::expect_file).
// publish = stage_checkpoint + save + finish + Store::publish; exploit = open_checkpoint
// (the donor's) + load, what the member waits for before it trains (the worker collects the
// check, CheckpointSource::finish, before it publishes: it overlaps the training), and the
// check timed apart, right after the load. Each (store, path, size, repetition) runs in a child process
// of its own, which reads its peak RSS (VmHWM) before and after: the worker's memory, not
// the Python trainer's.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "pbt/pbt.hpp"
#include "bench_common.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kChunk = 1 << 20;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::uint64_t splitmix(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// N bytes made on the fly, 1 MiB at a time: a random block drawn from `seed`, its first 16
// bytes replaced by (seed, chunk index) in every chunk, so that no two chunks (and no two
// seeds' checkpoints) are equal while making one costs next to nothing.
class Ballast {
 public:
  explicit Ballast(std::uint64_t seed) : seed_(seed), block_(kChunk) {
    std::uint64_t s = seed;
    for (std::size_t i = 0; i < kChunk; i += 8) {
      const std::uint64_t v = splitmix(s);
      std::memcpy(block_.data() + i, &v, 8);
    }
  }
  // Chunk i (the first n bytes of it are the ones that count).
  const char* chunk(std::uint64_t i) {
    std::memcpy(block_.data(), &seed_, 8);
    std::memcpy(block_.data() + 8, &i, 8);
    return block_.data();
  }

 private:
  std::uint64_t seed_;
  std::vector<char> block_;
};

// The C++ path's trainable: its model is `bytes` bytes of Ballast(seed).
class BallastTrainable : public pbt::Trainable {
 public:
  BallastTrainable(std::uint64_t bytes, std::uint64_t seed) : bytes_(bytes), ballast_(seed), got_(kChunk) {}
  void apply(const pbt::Hyperparams&) override {}
  void step(std::int64_t) override {}
  pbt::Score eval() override { return {}; }
  void save(pbt::CheckpointWriter& out) const override {
    std::uint64_t i = 0;
    for (std::uint64_t off = 0; off < bytes_; off += kChunk, ++i)
      out.write_bytes(ballast_.chunk(i), std::min<std::uint64_t>(kChunk, bytes_ - off));
  }
  void load(pbt::CheckpointReader& in) override {
    if (in.remaining() != bytes_)
      throw pbt::CheckpointError("ballast: " + std::to_string(in.remaining()) + " bytes, not " +
                                 std::to_string(bytes_));
    std::uint64_t i = 0;
    for (std::uint64_t off = 0; off < bytes_; off += kChunk, ++i) {
      const std::size_t n = std::min<std::uint64_t>(kChunk, bytes_ - off);
      in.read_bytes(got_.data(), n);
      if (std::memcmp(got_.data(), ballast_.chunk(i), n) != 0)
        throw pbt::CheckpointError("ballast: chunk " + std::to_string(i) + " is not the one saved");
    }
  }

 private:
  std::uint64_t bytes_;
  mutable Ballast ballast_;
  std::vector<char> got_;
};

long vm_hwm_kb() {
  long kb = -1;
  std::sscanf(bench::field_of("/proc/self/status", "VmHWM").c_str(), "%ld", &kb);
  return kb;
}

// Runs f in a child process; returns the line it returned, or throws with its error.
std::string in_child(const std::function<std::string()>& f) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe");
  std::cout.flush();
  std::cerr.flush();
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    close(fds[0]);
    std::string line;
    try {
      line = "ok " + f();
    } catch (const std::exception& e) {
      line = std::string("error ") + e.what();
    }
    for (char& c : line)
      if (c == '\n') c = ' ';
    line += "\n";
    std::size_t done = 0;
    while (done < line.size()) {
      ssize_t n = write(fds[1], line.data() + done, line.size() - done);
      if (n <= 0) _exit(3);
      done += static_cast<std::size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  if (out.rfind("ok ", 0) == 0) return out.substr(3);
  if (out.rfind("error ", 0) == 0) throw std::runtime_error(out.substr(6));
  throw std::runtime_error("the child process died (wait status " + std::to_string(status) + ")");
}

// Machine limits. Each writes its files in `dir` and removes them.
// N bytes written and fsynced (what `dd if=/dev/zero of=F bs=1M count=N conv=fsync` does, with
// the bench's bytes instead of zeros); seconds.
double fsync_write(const std::string& path, std::uint64_t bytes, std::uint64_t seed) {
  Ballast b(seed);
  ::sync();
  const auto t0 = Clock::now();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + path);
  std::uint64_t i = 0;
  for (std::uint64_t off = 0; off < bytes; off += kChunk, ++i) {
    const std::size_t n = std::min<std::uint64_t>(kChunk, bytes - off);
    if (::write(fd, b.chunk(i), n) != static_cast<ssize_t>(n)) throw std::runtime_error("cannot write " + path);
  }
  if (::fsync(fd) != 0) throw std::runtime_error("cannot fsync " + path);
  ::close(fd);
  const double s = since(t0);
  ::unlink(path.c_str());
  return s;
}

// A plain copy (read + write in 1 MiB blocks, no fsync: what cp does) of an N-byte file that
// was just written (so in the page cache, as a checkpoint just published is): seconds of the
// first copy and of the same copy repeated (to a new file): see the report's note on the two.
std::pair<double, double> plain_copy(const std::string& dir, std::uint64_t bytes, std::uint64_t seed) {
  const std::string src = dir + "/copy-src", dst = dir + "/copy-dst";
  {
    Ballast b(seed);
    std::ofstream f(src, std::ios::binary);
    std::uint64_t i = 0;
    for (std::uint64_t off = 0; off < bytes; off += kChunk, ++i)
      f.write(b.chunk(i), static_cast<std::streamsize>(std::min<std::uint64_t>(kChunk, bytes - off)));
    if (!f) throw std::runtime_error("cannot write " + src);
  }
  std::vector<char> buf(kChunk);
  auto copy = [&] {
    ::sync();
    const auto t0 = Clock::now();
    int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
    int out = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || out < 0) throw std::runtime_error("cannot open the copy's files in " + dir);
    ssize_t n;
    while ((n = ::read(in, buf.data(), buf.size())) > 0)
      if (::write(out, buf.data(), static_cast<std::size_t>(n)) != n) throw std::runtime_error("cannot write " + dst);
    ::close(in);
    ::close(out);
    const double s = since(t0);
    ::unlink(dst.c_str());
    return s;
  };
  const double first = copy();
  const double again = copy();
  ::unlink(src.c_str());
  return {first, again};
}

// What a directory takes on disk (allocated blocks, each inode once), like `du -s`.
std::uint64_t disk_usage(const std::string& dir) {
  std::uint64_t total = 0;
  std::set<std::pair<dev_t, ino_t>> seen;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (!seen.insert({st.st_dev, st.st_ino}).second) continue;
    total += static_cast<std::uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

struct StoreUnderTest {
  std::string name, uri, files_dir;  // files_dir: what `du` sums for the store
};

struct Path {
  std::string name;  // "cpp" | "process" | "sequential"
};

struct Sample {
  double publish_s = 0, exploit_s = 0, trainer_save_s = -1, trainer_load_s = -1;
  double hwm_before_mb = 0, hwm_after_mb = 0;
  // Where the time goes. publish = save (stage_checkpoint + Trainable::save + flush) + staged
  // (CheckpointStager::finish) + commit (Store::publish); exploit = load (open_checkpoint +
  // Trainable::load) + verify (CheckpointSource::finish).
  double save_s = 0, staged_s = 0, commit_s = 0, load_s = 0, verify_s = 0;
};

struct Options {
  std::vector<double> sizes_mb = {1, 100, 1000};
  int reps = 3;
  std::string dir, pg_uri, out, python, root = ".";
  std::vector<std::string> paths = {"cpp", "process", "sequential"};
};

std::string size_label(double mb) {
  if (mb >= 1000 && std::fmod(mb, 1000) == 0) return bench::fmt(mb / 1000, 0) + " GB";
  return bench::fmt(mb, mb == std::floor(mb) ? 0 : 1) + " MB";
}

std::uint64_t bytes_of(double mb) { return static_cast<std::uint64_t>(mb * 1e6); }

std::string experiment_of(const std::string& path, double mb) { return "ckpt_" + path + "_" + bench::fmt(mb * 1e6, 0); }

// One publish and one exploit of an N-byte checkpoint, in this (child) process.
std::string measure(const Options& o, const StoreUnderTest& st, const std::string& path, double mb, std::uint64_t seed,
                    const std::string& times_file) {
  const std::uint64_t bytes = bytes_of(mb);
  auto store = pbt::open_store(st.uri);
  const std::string exp = experiment_of(path, mb);
  if (!store->experiment(exp)) {
    pbt::ExperimentInfo info;
    info.name = exp;
    info.config = "bench";
    info.origin = "checkpoints";
    info.population = 1;
    pbt::MemberState m;
    m.id = 0;
    m.h = {{"lr", 0.01}};
    store->create_experiment(info, {m});
  }
  auto leased = store->lease(exp, "bench", 3600);
  if (!leased) throw std::runtime_error("no member to lease in " + exp);

  std::unique_ptr<pbt::Trainable> t;
  if (path == "cpp") {
    t = std::make_unique<BallastTrainable>(bytes, seed);
  } else {
    pbt::TrainableContext ctx;
    ctx.member = 0;
    ctx.seed = seed;
    ctx.scratch_dir = store->scratch_dir();
    ctx.log = [](const std::string&) {};
    ctx.options = {{"argv", {o.python, o.root + "/bench/perf/ballast_trainer.py"}},
                   {"env",
                    {{"BALLAST_BYTES", std::to_string(bytes)},
                     {"BALLAST_SEED", std::to_string(seed)},
                     {"BALLAST_TIMES", times_file},
                     {"BALLAST_SEQUENTIAL", path == "sequential" ? "1" : "0"}}}};
    t = pbt::make_trainable("process", ctx);
  }

  Sample s;
  s.hwm_before_mb = vm_hwm_kb() / 1024.0;
  ::sync();  // earlier runs' dirty pages are not this publish's to write back

  auto t0 = Clock::now();
  std::unique_ptr<pbt::CheckpointStager> stager = store->stage_checkpoint();
  {
    pbt::CheckpointWriter w(*stager);
    t->save(w);
    w.flush();
  }
  s.save_s = since(t0);
  pbt::Publication pub;
  pub.step = leased->member.step + 1;
  pub.last_ready_step = pub.step;
  pub.score = 0;
  pub.h = leased->member.h;
  auto t1 = Clock::now();
  pub.checkpoint = stager->finish();
  stager.reset();
  s.staged_s = since(t1);
  t1 = Clock::now();
  store->publish(leased->lease, pub);
  s.commit_s = since(t1);
  s.publish_s = since(t0);
  const std::string id = pub.checkpoint->id();
  pub.checkpoint.reset();
  store->release(leased->lease);

  // The exploit: another member's worker would load this donor's checkpoint.
  t0 = Clock::now();
  {
    std::unique_ptr<pbt::CheckpointSource> source = store->open_checkpoint(id);
    pbt::CheckpointReader r(*source);
    t->load(r);
    s.load_s = since(t0);
    const auto t2 = Clock::now();
    source->finish();
    s.verify_s = since(t2);
  }
  s.exploit_s = s.load_s;  // as the worker waits; verify_s overlaps its training
  s.hwm_after_mb = vm_hwm_kb() / 1024.0;
  t.reset();  // the trainer process ends (and its scratch directory goes)

  if (path != "cpp") {
    std::ifstream in(times_file);
    std::string what;
    double secs;
    while (in >> what >> secs) {
      if (what == "save") s.trainer_save_s = secs;
      if (what == "load") s.trainer_load_s = secs;
    }
    std::error_code ec;
    fs::remove(times_file, ec);
  }
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.9f %.9f %.9f %.9f %.3f %.3f %.9f %.9f %.9f %.9f %.9f", s.publish_s, s.exploit_s,
                s.trainer_save_s, s.trainer_load_s, s.hwm_before_mb, s.hwm_after_mb, s.save_s, s.staged_s, s.commit_s,
                s.load_s, s.verify_s);
  return buf;
}

// After garbage collection: the live checkpoints' bytes (each distinct id a member refers
// to, in every experiment of the store) and the store's files on disk.
std::string store_size(const StoreUnderTest& st) {
  auto store = pbt::open_store(st.uri);
  store->collect_garbage();
  std::set<std::string> ids;
  for (const auto& e : store->experiments())
    for (const auto& m : store->population(e))
      if (!m.checkpoint.empty()) ids.insert(m.checkpoint);
  std::uint64_t live = 0;
  for (const auto& id : ids) live += store->open_checkpoint(id)->size();
  return std::to_string(live) + " " + std::to_string(ids.size());
}

std::vector<double> parse_sizes(const std::string& s) {
  std::vector<double> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    const double v = std::stod(part);
    if (!(v > 0)) throw std::runtime_error("--sizes: " + part + " is not a positive number of MB");
    out.push_back(v);
  }
  return out;
}

std::vector<std::string> parse_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ','))
    if (!part.empty()) out.push_back(part);
  return out;
}

// The sections of an earlier --out file that this bench does not write (bench/perf/switch_cost.py's,
// notes added by hand), kept after its own when it rewrites the file.
std::string others_sections(const std::string& path) {
  static const std::vector<std::string> kOwn = {"## The machine's limits", "## Publish and exploit",
                                                "## Where the time goes", "## Store size after garbage collection",
                                                "## The goals of issue #17"};
  std::ifstream in(path);
  if (path.empty() || !in) return "";
  std::string out, line;
  bool keep = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) {
      keep = true;
      for (const auto& own : kOwn)
        if (line.rfind(own, 0) == 0) keep = false;
      if (keep) {  // one blank line before it
        while (!out.empty() && out.back() == '\n') out.pop_back();
        out += out.empty() ? "\n" : "\n\n";
      }
    } else if (line.rfind("# ", 0) == 0) {
      keep = false;
    }
    if (keep) out += line + "\n";
  }
  while (out.size() > 1 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n') out.pop_back();
  return out;
}

std::string mb_s(double bytes, double seconds) { return seconds > 0 ? bench::fmt(bytes / 1e6 / seconds, 0) : "n/a"; }

std::string ratio(double x) { return std::isnan(x) ? "n/a" : bench::fmt(x, 2); }

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&] {
        if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
        return std::string(argv[++i]);
      };
      if (a == "--sizes") o.sizes_mb = parse_sizes(next());
      else if (a == "--reps") o.reps = std::stoi(next());
      else if (a == "--dir") o.dir = next();
      else if (a == "--postgres") o.pg_uri = next();
      else if (a == "--paths") o.paths = parse_list(next());
      else if (a == "--python") o.python = next();
      else if (a == "--root") o.root = next();
      else if (a == "--out") o.out = next();
      else throw std::runtime_error("unknown argument " + a);
    }
    if (o.reps < 1) throw std::runtime_error("--reps must be at least 1");
    for (const auto& p : o.paths)
      if (p != "cpp" && p != "process" && p != "sequential")
        throw std::runtime_error("--paths: " + p + " is not cpp, process or sequential");
    if (o.pg_uri.find("checkpoint_dir=") != std::string::npos)
      throw std::runtime_error("--postgres: give the URI without checkpoint_dir= (the bench puts it in --dir)");
  } catch (const std::exception& e) {
    std::cerr << "checkpoints: " << e.what()
              << "\nusage: checkpoints [--sizes 1,100,1000] [--reps 3] [--dir DIR] [--postgres URI] "
                 "[--paths cpp,process,sequential] [--python PATH] [--root .] [--out FILE]\n";
    return 2;
  }
  if (std::any_of(o.paths.begin(), o.paths.end(), [](const std::string& p) { return p != "cpp"; }) &&
      !fs::exists(o.root + "/bench/perf/ballast_trainer.py")) {
    std::cerr << "checkpoints: " << o.root << "/bench/perf/ballast_trainer.py not found (run from the repository "
              << "root or give --root)\n";
    return 2;
  }
  const std::string load_at_start = bench::loadavg();
  const bool own_dir = o.dir.empty();
  if (own_dir) o.dir = (fs::current_path() / ("bench-checkpoints-" + std::to_string(getpid()))).string();
  fs::create_directories(o.dir);
  o.dir = fs::canonical(o.dir).string();
  const std::string filesystem = bench::shell_line("df -hT '" + o.dir + "' | tail -1");
  std::string free_at_start = bench::shell_line("df -h --output=avail '" + o.dir + "' | tail -1");
  free_at_start.erase(0, free_at_start.find_first_not_of(' '));

  std::vector<StoreUnderTest> stores;
  fs::create_directories(o.dir + "/sqlite");
  stores.push_back({"sqlite", "sqlite:" + o.dir + "/sqlite/store.db", o.dir + "/sqlite"});
  if (!o.pg_uri.empty()) {
    const std::string ckdir = o.dir + "/pg-checkpoints";
    fs::create_directories(ckdir);
    std::string uri = o.pg_uri + (o.pg_uri.find('?') == std::string::npos ? "?" : "&") + "checkpoint_dir=" + ckdir;
    if (o.pg_uri.find("schema=") == std::string::npos) uri += "&schema=pbt_ckpt_bench_" + std::to_string(getpid());
    stores.push_back({"postgresql", uri, ckdir});
  }

  // A fresh seed per run: a store kept between runs (PostgreSQL) must not find the bytes already there.
  const std::uint64_t nonce = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());

  std::map<double, std::vector<double>> first_write_s, write_s, first_copy_s, copy_s;
  // (store, path, size) -> samples
  std::map<std::tuple<std::string, std::string, double>, std::vector<Sample>> samples;
  std::map<std::tuple<std::string, std::string, double>, std::string> failures;
  struct SizeRow {
    double after_mb;
    std::uint64_t live, disk;
    std::size_t count;
    std::string error;
  };
  std::map<std::string, std::vector<SizeRow>> store_sizes;

  for (double mb : o.sizes_mb) {
    const std::uint64_t bytes = bytes_of(mb);
    // At once on disk at worst: the copy's two files, or a checkpoint per (store, path) plus
    // one being staged; and 1 GB to spare for everyone else.
    struct statvfs vfs {};
    const double need = static_cast<double>(bytes) * (2 + stores.size() * o.paths.size() + 1) + 1e9;
    if (::statvfs(o.dir.c_str(), &vfs) == 0 && static_cast<double>(vfs.f_bavail) * vfs.f_frsize < need) {
      std::cerr << "checkpoints: " << bench::fmt(need / 1e9, 1) << " GB free needed in " << o.dir << " for the "
                << size_label(mb) << " runs; stopping before them\n";
      break;
    }
    for (int r = 0; r < o.reps; ++r) {
      std::uint64_t seed = nonce ^ (static_cast<std::uint64_t>(r) << 48) ^ bytes;
      // Twice, as the copy: the rate is often several times higher the second time.
      first_write_s[mb].push_back(fsync_write(o.dir + "/fsync-write", bytes, seed));
      write_s[mb].push_back(fsync_write(o.dir + "/fsync-write", bytes, seed + 2));
      const auto [first, again] = plain_copy(o.dir, bytes, seed + 1);
      first_copy_s[mb].push_back(first);
      copy_s[mb].push_back(again);
      std::cerr << size_label(mb) << " rep " << r + 1 << ": fsync'd write " << mb_s(bytes, first_write_s[mb].back())
                << " MB/s, repeated " << mb_s(bytes, write_s[mb].back()) << " MB/s, plain copy "
                << mb_s(bytes, first_copy_s[mb].back()) << " MB/s, repeated " << mb_s(bytes, copy_s[mb].back())
                << " MB/s\n";
      for (const auto& st : stores) {
        for (std::size_t p = 0; p < o.paths.size(); ++p) {
          const std::string& path = o.paths[p];
          const auto key = std::make_tuple(st.name, path, mb);
          seed = splitmix(seed);
          try {
            const std::string line = in_child([&] { return measure(o, st, path, mb, seed, o.dir + "/trainer-times"); });
            Sample s;
            std::istringstream in(line);
            in >> s.publish_s >> s.exploit_s >> s.trainer_save_s >> s.trainer_load_s >> s.hwm_before_mb >>
                s.hwm_after_mb >> s.save_s >> s.staged_s >> s.commit_s >> s.load_s >> s.verify_s;
            samples[key].push_back(s);
            std::cerr << "  " << st.name << " " << path << ": publish " << mb_s(bytes, s.publish_s) << " MB/s, exploit "
                      << mb_s(bytes, s.exploit_s) << " MB/s, peak RSS " << bench::fmt(s.hwm_after_mb, 1) << " MB (+"
                      << bench::fmt(s.hwm_after_mb - s.hwm_before_mb, 1) << ")\n";
          } catch (const std::exception& e) {
            failures[key] = e.what();
            std::cerr << "  " << st.name << " " << path << ": failed: " << e.what() << "\n";
          }
        }
      }
    }
    for (const auto& st : stores) {
      SizeRow row{mb, 0, 0, 0, ""};
      try {
        std::istringstream in(in_child([&] { return store_size(st); }));
        in >> row.live >> row.count;
        row.disk = disk_usage(st.files_dir);
      } catch (const std::exception& e) {
        row.error = e.what();
      }
      store_sizes[st.name].push_back(row);
    }
  }

  // The report.
  std::ostringstream md;
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
  };
  std::string sizes_arg;
  for (double mb : o.sizes_mb)
    sizes_arg += (sizes_arg.empty() ? "" : ",") + bench::fmt(mb, mb == std::floor(mb) ? 0 : 1);
  md << "# Large checkpoints: publish, exploit, memory and store size\n\n"
     << "Reproduce (from the repository root; the PostgreSQL rows need a server, e.g. the one "
        "scripts/pg-for-tests.sh starts):\n\n```sh\nscripts/setup.sh build\n"
     << "./build/bench/perf/checkpoints --sizes " << sizes_arg << " --reps " << o.reps
     << (join(o.paths) == "cpp,process,sequential" ? "" : " --paths " + join(o.paths))
     << (o.pg_uri.empty() ? "" : " --postgres postgresql://USER@127.0.0.1:PORT/DB")
     << " --out docs/results/checkpoints.md\n```\n\n"
     << bench::machine_markdown(load_at_start) << "- Files in "
     << (own_dir ? "a new directory under the repository" : o.dir) << ": `" << filesystem
     << "` (free at the start: " << free_at_start << ")\n"
     << "- Stores: SQLite (a fresh file, WAL)"
     << (o.pg_uri.empty() ? "; PostgreSQL not measured (no --postgres URI given)"
                          : "; PostgreSQL on loopback with checkpoint_dir= in the same directory (a fresh schema)")
     << "\n- Python for the process path: " << o.python
     << "\n- The sections after the goals come from bench/perf/switch_cost.py or were written by hand; this bench "
        "keeps them when it rewrites the file.\n\n";

  md << "## The machine's limits (median of " << o.reps << ")\n\n"
     << "fsync'd write: N bytes written in 1 MiB blocks, then fsync (as `dd bs=1M conv=fsync`). Plain copy: read + "
        "write in 1 MiB blocks of a file just written (in the page cache, as a checkpoint just published is), no "
        "fsync (as `cp`). Each twice: first, then repeated to a new file. On this machine either often runs "
        "several times faster the second time (two modes, about 400 MB/s and 1.5 GB/s for writes, without a known "
        "cause: the virtual machine's memory or disk). `sync` before each. The ratios below are to the repeated "
        "(faster) ones: the stricter test.\n\n"
     << "| size | fsync'd write, first MB/s | fsync'd write, repeated MB/s | plain copy, first MB/s | plain copy, "
        "repeated MB/s |\n|---|---:|---:|---:|---:|\n";
  for (double mb : o.sizes_mb) {
    std::vector<double> fw, w, f, c;
    for (double s : first_write_s[mb]) fw.push_back(bytes_of(mb) / 1e6 / s);
    for (double s : write_s[mb]) w.push_back(bytes_of(mb) / 1e6 / s);
    for (double s : first_copy_s[mb]) f.push_back(bytes_of(mb) / 1e6 / s);
    for (double s : copy_s[mb]) c.push_back(bytes_of(mb) / 1e6 / s);
    md << "| " << size_label(mb) << " | " << bench::fmt(bench::median(fw), 0) << " | "
       << bench::fmt(bench::median(w), 0) << " | " << bench::fmt(bench::median(f), 0) << " | "
       << bench::fmt(bench::median(c), 0) << " |\n";
  }

  md << "\n## Publish and exploit (median of " << o.reps << ")\n\n"
     << "publish = stage_checkpoint + save + finish + Store::publish (as the worker saves after an interval); "
        "exploit = open_checkpoint of the donor's checkpoint + load (as the worker copies a donor: what the member "
        "waits for before it trains); with the check = exploit + CheckpointSource::finish called right after (the "
        "worker collects the check before it publishes, so the check overlaps the interval's training). "
        "cpp: a trainable whose model is N bytes made and checked in 1 MiB chunks; process: ProcessTrainable "
        "with bench/perf/ballast_trainer.py (its own write and read of the file are shown apart: they are part "
        "of publish and exploit); sequential: the same trainer with `sequential_save` in its hello, so the store "
        "hashes the file while the trainer writes it. Ratios are to the machine's limits above, measured in the same "
        "run. Peak RSS "
        "is the bench process's (the worker's) VmHWM after the exploit, in a child process per measurement; "
        "growth is from before the publish.\n\n"
     << "| store | path | size | publish MB/s | × fsync'd write | exploit MB/s | × plain copy | exploit with the check "
        "MB/s | × plain copy | trainer's write ms | trainer's read ms | peak RSS MB | RSS growth MB |\n"
     << "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  // (store, path) -> size -> median peak RSS, for the goal.
  std::map<std::pair<std::string, std::string>, std::map<double, double>> peak;
  std::map<std::pair<std::string, std::string>, std::map<double, std::pair<double, double>>> ratios;
  for (const auto& st : stores)
    for (const auto& path : o.paths)
      for (double mb : o.sizes_mb) {
        const auto key = std::make_tuple(st.name, path, mb);
        const double bytes = static_cast<double>(bytes_of(mb));
        md << "| " << st.name << " | " << path << " | " << size_label(mb) << " | ";
        auto it = samples.find(key);
        if (it == samples.end() || it->second.empty()) {
          md << "failed: " << (failures.count(key) ? failures[key] : "no sample") << " | | | | | | | | | |\n";
          continue;
        }
        std::vector<double> pub, exp, checked, ts, tl, hwm, growth;
        for (const auto& s : it->second) {
          pub.push_back(bytes / 1e6 / s.publish_s);
          exp.push_back(bytes / 1e6 / s.exploit_s);
          checked.push_back(bytes / 1e6 / (s.exploit_s + s.verify_s));
          if (s.trainer_save_s >= 0) ts.push_back(s.trainer_save_s);
          if (s.trainer_load_s >= 0) tl.push_back(s.trainer_load_s);
          hwm.push_back(s.hwm_after_mb);
          growth.push_back(s.hwm_after_mb - s.hwm_before_mb);
        }
        std::vector<double> w, c;
        for (double s : write_s[mb]) w.push_back(bytes / 1e6 / s);
        for (double s : copy_s[mb]) c.push_back(bytes / 1e6 / s);
        const double pr = bench::median(pub) / bench::median(w), er = bench::median(exp) / bench::median(c);
        peak[{st.name, path}][mb] = bench::median(hwm);
        ratios[{st.name, path}][mb] = {pr, er};
        md << bench::fmt(bench::median(pub), 0) << " | " << ratio(pr) << " | " << bench::fmt(bench::median(exp), 0)
           << " | " << ratio(er) << " | " << bench::fmt(bench::median(checked), 0) << " | "
           << ratio(bench::median(checked) / bench::median(c)) << " | "
           << (ts.empty() ? "" : bench::fmt(1e3 * bench::median(ts), 1)) << " | "
           << (tl.empty() ? "" : bench::fmt(1e3 * bench::median(tl), 1)) << " | " << bench::fmt(bench::median(hwm), 1)
           << " | " << bench::fmt(bench::median(growth), 1) << " |"
           << (failures.count(key) ? " (a repetition failed: " + failures[key] + ")" : "") << "\n";
      }

  md << "\n## Where the time goes (ms, median of " << o.reps << ")\n\n"
     << "publish = save (stage_checkpoint + Trainable::save + flush: the cpp trainable writes its bytes into the "
        "stager; ProcessTrainable has the trainer write its file, then hands it over with write_file) + staged "
        "(CheckpointStager::finish) + commit (Store::publish). exploit = load (open_checkpoint + Trainable::load: "
        "for the process path, to_file and the trainer's read) + verify (CheckpointSource::finish).\n\n"
     << "| store | path | size | save | of it the trainer's write | staged | commit | load | of it the trainer's "
        "read | verify |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& st : stores)
    for (const auto& path : o.paths)
      for (double mb : o.sizes_mb) {
        auto it = samples.find(std::make_tuple(st.name, path, mb));
        if (it == samples.end() || it->second.empty()) continue;
        auto ms = [&](double Sample::*field) {
          std::vector<double> v;
          for (const auto& s : it->second)
            if (s.*field >= 0) v.push_back(1e3 * (s.*field));
          return v.empty() ? std::string() : bench::fmt(bench::median(v), 1);
        };
        md << "| " << st.name << " | " << path << " | " << size_label(mb) << " | " << ms(&Sample::save_s) << " | "
           << ms(&Sample::trainer_save_s) << " | " << ms(&Sample::staged_s) << " | " << ms(&Sample::commit_s) << " | "
           << ms(&Sample::load_s) << " | " << ms(&Sample::trainer_load_s) << " | " << ms(&Sample::verify_s) << " |\n";
      }

  md << "\n## Store size after garbage collection\n\n"
     << "After each size's runs: Store::collect_garbage, then the live checkpoints (the distinct ones members "
        "refer to, every experiment of the store: one per path and size so far) against the store's files on "
        "disk (allocated blocks, as `du`: SQLite's database, its WAL and checkpoint files; PostgreSQL's "
        "checkpoint_dir, not the server's own tables).\n\n"
     << "| store | after | live checkpoints | live MB | on disk MB | on disk / live |\n|---|---|---:|---:|---:|---:|\n";
  std::map<std::string, double> last_size_ratio;
  for (const auto& st : stores)
    for (const auto& row : store_sizes[st.name]) {
      md << "| " << st.name << " | " << size_label(row.after_mb) << " | ";
      if (!row.error.empty()) {
        md << "failed: " << row.error << " | | | |\n";
        continue;
      }
      const double r = row.live ? static_cast<double>(row.disk) / row.live : std::nan("");
      last_size_ratio[st.name] = r;
      md << row.count << " | " << bench::fmt(row.live / 1e6, 1) << " | " << bench::fmt(row.disk / 1e6, 1) << " | "
         << ratio(r) << " |\n";
    }

  // The goals of issue #17, at the largest size measured (and from the smallest to it for memory).
  const double small = *std::min_element(o.sizes_mb.begin(), o.sizes_mb.end());
  const double large = *std::max_element(o.sizes_mb.begin(), o.sizes_mb.end());
  auto verdict = [](bool ok) { return ok ? "met" : "**not met**"; };
  md << "\n## The goals of issue #17 (at " << size_label(large) << ")\n\n"
     << "| store | path | publish ≥ 0.5 × fsync'd write | exploit ≥ 0.5 × plain copy | peak RSS growth "
     << size_label(small) << " → " << size_label(large)
     << " < 64 MB | store ≤ live + 10% |\n|---|---|---|---|---|---|\n";
  for (const auto& st : stores)
    for (const auto& path : o.paths) {
      md << "| " << st.name << " | " << path << " | ";
      auto rit = ratios.find({st.name, path});
      if (rit != ratios.end() && rit->second.count(large)) {
        const auto [pr, er] = rit->second[large];
        // Against the first (often slower) write and copy too: the verdict is the stricter one's.
        const double bytes = static_cast<double>(bytes_of(large));
        std::vector<double> pub, exp, checked, c, fw, fc;
        for (const auto& sm : samples[std::make_tuple(st.name, path, large)]) {
          pub.push_back(bytes / 1e6 / sm.publish_s);
          exp.push_back(bytes / 1e6 / sm.exploit_s);
          checked.push_back(bytes / 1e6 / (sm.exploit_s + sm.verify_s));
        }
        for (double x : copy_s[large]) c.push_back(bytes / 1e6 / x);
        for (double x : first_write_s[large]) fw.push_back(bytes / 1e6 / x);
        for (double x : first_copy_s[large]) fc.push_back(bytes / 1e6 / x);
        md << ratio(pr) << ": " << verdict(pr >= 0.5) << " (" << ratio(bench::median(pub) / bench::median(fw))
           << " against the first write) | " << ratio(er) << ": " << verdict(er >= 0.5) << " ("
           << ratio(bench::median(exp) / bench::median(fc)) << " against the first copy; with the check "
           << ratio(bench::median(checked) / bench::median(c)) << ", and "
           << ratio(bench::median(checked) / bench::median(fc)) << " against the first copy) | ";
      } else {
        md << "n/a | n/a | ";
      }
      auto pit = peak.find({st.name, path});
      if (pit != peak.end() && pit->second.count(small) && pit->second.count(large)) {
        const double g = pit->second[large] - pit->second[small];
        md << bench::fmt(g, 1) << " MB: " << verdict(g < 64) << " | ";
      } else {
        md << "n/a | ";
      }
      if (last_size_ratio.count(st.name))
        md << ratio(last_size_ratio[st.name]) << ": " << verdict(last_size_ratio[st.name] <= 1.1) << " |\n";
      else md << "n/a |\n";
    }
  md << "\n(Store size is for the whole store, both paths together.)\n";

  bench::emit(md.str() + others_sections(o.out), o.out);
  std::error_code ec;
  if (own_dir) fs::remove_all(o.dir, ec);
  else {
    fs::remove_all(o.dir + "/sqlite", ec);
    fs::remove_all(o.dir + "/pg-checkpoints", ec);
  }
  return failures.empty() ? 0 : 1;
}
