// Small helpers shared by the benchmarks: timing, medians, running programs.
#pragma once

#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "util/subprocess.h"

namespace gondolin::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

inline std::string list(const std::vector<double>& v) {
  std::string out;
  char buf[32];
  for (double x : v) {
    std::snprintf(buf, sizeof buf, "%s%.2f", out.empty() ? "" : " ", x);
    out += buf;
  }
  return out;
}

// Runs `argv` (stdio inherited) to its end: its wall time in seconds, or -1
// if it did not exit with status 0.
inline double timed_run(std::vector<std::string> argv) {
  SpawnSpec spec;
  spec.argv = std::move(argv);
  auto start = Clock::now();
  int status = wait_process(spawn_process(spec));
  double t = seconds_since(start);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t : -1;
}

}  // namespace gondolin::bench
