#include "test_support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "util/paths.h"
#include "util/subprocess.h"
#include "util/unique_fd.h"

extern char** environ;

namespace gondolin::testing {
namespace {

std::string drain(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace

std::filesystem::path gondolin_binary() { return GONDOLIN_BINARY; }

CliResult run_gondolin(const std::vector<std::string>& args, const CliOptions& options) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) throw std::runtime_error("pipe");
  UniqueFd in_r(in[0]), in_w(in[1]), out_r(out[0]), out_w(out[1]), err_r(err[0]), err_w(err[1]);

  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& k : options.unset_env) env.erase(k);
  for (const auto& [k, v] : options.env) env[k] = v;
  std::vector<std::string> envv;
  for (const auto& [k, v] : env) envv.push_back(k + "=" + v);

  SpawnSpec spec;
  spec.argv = options.wrapper;
  spec.argv.push_back(gondolin_binary().string());
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.stdin_fd = in_r.get();
  spec.stdout_fd = out_w.get();
  spec.stderr_fd = err_w.get();
  spec.env = envv;
  spec.die_with_parent = true;
  pid_t pid = spawn_process(spec);
  in_r.reset();
  out_w.reset();
  err_w.reset();

  CliResult r;
  std::thread out_thread([&] { r.out = drain(out_r.get()); });
  std::thread err_thread([&] { r.err = drain(err_r.get()); });
  std::thread in_thread([&, data = options.stdin_data] {
    std::size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(in_w.get(), data.data() + off, data.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    in_w.reset();
  });
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  in_thread.join();
  out_thread.join();
  err_thread.join();
  if (WIFEXITED(status))
    r.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    r.term_signal = WTERMSIG(status);
  return r;
}

TempDir::TempDir() : path_(paths::make_private_temp_dir("gondolin-test")) {}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<pid_t> child_pids(pid_t pid) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state;
    int ppid = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == pid)
      out.push_back(static_cast<pid_t>(std::stoi(name)));
  }
  return out;
}

bool process_alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && line.size() > close + 2 && line[close + 2] != 'Z';
}

std::optional<long> peak_rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return std::nullopt;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::filesystem::path& p, const std::string& contents) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << contents;
}

std::string host_sh(const std::string& command) {
  CommandResult r = run_command({"/bin/sh", "-c", command});
  if (!r.ok()) throw std::runtime_error("host command failed: " + command + ": " + r.output);
  return r.output;
}

const char* const kPythonOpenNonblocking = R"(import socket, sys, time
def open_nonblocking(n):
    out = []
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("93.184.216.34", 80))
        except BlockingIOError:
            pass
        except OSError as e:
            print("connect", e)
            break
        out.append(s)
    return out
)";

}  // namespace gondolin::testing
