// The image's init_extra (spec key): a shell script the builder puts at
// /etc/gondolin/init-extra, run once at boot after the network is up and
// before the agent serves its first command — to start a daemon, say. It
// runs in its own session with /dev/null as stdin and its output in
// /run/gondolin/init-extra.log; whatever it starts in the background keeps
// running. A failure does not stop the boot: it is handed to the host in
// Hello, which warns the user.
#pragma once

#include <string>

namespace gondolin::agent {

// Returns "" when there is no script or it exited 0; otherwise one line
// saying how it ended and the last line it printed.
std::string run_init_extra();

}  // namespace gondolin::agent
