// `gondolin ssh ID [--print] [-- CMD...]`: host -> guest SSH into a running
// session (Session::enable_ssh): runs the host's ssh client with the
// session's key and pinned host key, or prints how to.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "gondolin/error.h"
#include "gondolin/guest_ssh.h"
#include "gondolin/session.h"

namespace gondolin::cli {

void print_guest_ssh(std::FILE* out, const GuestSshAccess& a) {
  std::fprintf(
      out,
      "ssh into the guest with:\n  %s\nor add to ~/.ssh/config (then ssh %s, scp FILE %s:, rsync -e ssh DIR %s:):\n%s",
      a.command_line().c_str(), a.alias.c_str(), a.alias.c_str(), a.alias.c_str(), a.config_snippet().c_str());
}

void add_ssh_command(CLI::App& app, Outcome& outcome) {
  struct Flags {
    std::string session;
    bool print = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("ssh", "SSH into a running session: ssh ID [--print] [-- CMD [ARG...]]");
  cmd->add_option("session", f->session, "Session id or unique prefix")->required();
  cmd->add_flag("--print", f->print, "Print the ssh command line and an ~/.ssh/config block instead of connecting");
  cmd->callback([f, &outcome] {
    GuestSshAccess a = Session::enable_ssh(Session::find(f->session));
    if (f->print) {
      if (outcome.trailing) throw Error(ErrorKind::Usage, "ssh --print takes no command");
      print_guest_ssh(stdout, a);
      outcome.exit_code = 0;
      return;
    }
    std::vector<std::string> argv = a.ssh_argv();
    if (outcome.trailing) argv.insert(argv.end(), outcome.trailing->begin(), outcome.trailing->end());
    std::vector<char*> raw;
    for (auto& s : argv) raw.push_back(s.data());
    raw.push_back(nullptr);
    std::fflush(nullptr);
    ::execvp("ssh", raw.data());
    throw Error(ErrorKind::Usage, std::string("cannot run ssh (install openssh-client): ") + std::strerror(errno));
  });
}

}  // namespace gondolin::cli
