#include "init_extra.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace gondolin::agent {
namespace {

constexpr const char* kScript = "/etc/gondolin/init-extra";
constexpr const char* kLog = "/run/gondolin/init-extra.log";
constexpr auto kLimit = std::chrono::seconds(60);

[[noreturn]] void exec_script() {
  ::setsid();
  int in = ::open("/dev/null", O_RDONLY);
  int out = ::open(kLog, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
  if (in < 0 || out < 0) ::_exit(126);
  ::dup2(in, 0);
  ::dup2(out, 1);
  ::dup2(out, 2);
  ::chdir("/");
  char* const envp[] = {const_cast<char*>("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
                        const_cast<char*>("HOME=/root"), const_cast<char*>("LANG=C.UTF-8"), nullptr};
  ::execle("/bin/sh", "sh", kScript, static_cast<char*>(nullptr), envp);
  ::_exit(127);
}

std::string last_line_of_log() {
  std::ifstream f(kLog);
  std::string line, last;
  while (std::getline(f, line))
    if (!line.empty()) last = line;
  if (last.size() > 300) last = last.substr(last.size() - 300);
  return last;
}

}  // namespace

std::string run_init_extra() {
  struct stat st {};
  if (::stat(kScript, &st) != 0) return "";
  ::mkdir("/run/gondolin", 0700);
  pid_t pid = ::fork();
  if (pid < 0) return std::string("cannot start: ") + std::strerror(errno);
  if (pid == 0) exec_script();
  auto deadline = std::chrono::steady_clock::now() + kLimit;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return std::string("lost it: ") + std::strerror(errno);
    if (std::chrono::steady_clock::now() >= deadline)
      return "still running after 60 s (left running; background long jobs with &)";
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  std::ostringstream why;
  if (WIFEXITED(status))
    why << "exit status " << WEXITSTATUS(status);
  else
    why << "killed by signal " << WTERMSIG(status);
  std::string last = last_line_of_log();
  if (!last.empty()) why << ": " << last;
  why << " (full output: " << kLog << ")";
  return why.str();
}

}  // namespace gondolin::agent
