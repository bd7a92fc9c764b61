#pragma once
// Small helpers shared by the benchmarks: statistics, the machine description that every
// results file carries, and --out handling. Header-only (each .cpp under bench/perf/ and
// bench/paper/ is its own executable).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace bench {

inline double median(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

inline double mean(const std::vector<double>& v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  double s = 0;
  for (double x : v) s += x;
  return s / v.size();
}

inline double min_of(const std::vector<double>& v) {
  return v.empty() ? std::numeric_limits<double>::quiet_NaN() : *std::min_element(v.begin(), v.end());
}

inline double max_of(const std::vector<double>& v) {
  return v.empty() ? std::numeric_limits<double>::quiet_NaN() : *std::max_element(v.begin(), v.end());
}

inline std::string fmt(double x, int decimals = 3) {
  if (std::isnan(x)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
  return buf;
}

// First line of a command's output (empty on failure).
inline std::string shell_line(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    if (std::fgets(buf, sizeof buf, p)) out = buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

inline std::string field_of(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, key.size(), key) == 0) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      auto v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  return "unknown";
}

// "nproc N, CPU <model>, memory <MemTotal>, date <UTC>, commit <sha>[ (+ local changes)]".
inline std::string loadavg() {
  std::string load;
  std::ifstream la("/proc/loadavg");
  std::getline(la, load);
  return load;
}

inline std::string machine_markdown(const std::string& load_at_start) {
  std::ostringstream o;
  const long nproc = sysconf(_SC_NPROCESSORS_ONLN);
  const std::string cpu = field_of("/proc/cpuinfo", "model name");
  const std::string mem_kb = field_of("/proc/meminfo", "MemTotal");
  double mem_gib = 0;
  std::sscanf(mem_kb.c_str(), "%lf", &mem_gib);
  mem_gib /= 1024.0 * 1024.0;
  char date[64];
  std::time_t t = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  const std::string commit = shell_line("git rev-parse --short HEAD 2>/dev/null");
  const std::string dirty =
      shell_line("git status --porcelain --untracked-files=no -- src include 2>/dev/null | head -1");
  o << "- Machine: nproc " << nproc << "; CPU model \"" << cpu << "\"; memory " << mem_kb << " (" << fmt(mem_gib, 1)
    << " GiB)\n";
  o << "- Date: " << date << "; /proc/loadavg at the start: " << load_at_start << ", at the end: " << loadavg()
    << " (the cores are shared with other work, so timings carry noise)\n";
  o << "- Source: commit " << (commit.empty() ? "unknown" : commit)
    << (dirty.empty() ? "" : " with uncommitted changes in src/ or include/ (the tree as built)") << "\n";
  return o.str();
}

// Prints to stdout; with --out FILE also writes FILE.
inline void emit(const std::string& text, const std::string& out_path) {
  std::cout << text << std::flush;
  if (!out_path.empty()) {
    std::ofstream f(out_path);
    if (!f) throw std::runtime_error("cannot write " + out_path);
    f << text;
    std::cerr << "wrote " << out_path << "\n";
  }
}

}  // namespace bench
