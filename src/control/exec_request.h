// One translation between the public ExecOptions and the wire's ExecStart,
// used by Vm::spawn (the VM's own commands), the session client (`attach`)
// and the session server (an attached command arriving from a socket).
//
// Invariant: every ExecStart that leaves exec_start_for has a non-empty argv,
// no NUL byte in argv, env or cwd, env entries of the form KEY=VALUE with a
// non-empty KEY, and fits one control frame. Image defaults (workdir, user)
// and the VM's own environment are the caller's to merge in first.
#pragma once

#include <utility>

#include "gondolin/exec.h"
#include "proto/control_protocol.h"

namespace gondolin::control {

// Throws Error(Usage) naming what is wrong.
proto::ExecStart exec_start_for(const Command& command, const ExecOptions& options);

// The inverse, for a request decoded from a session socket.
std::pair<Command, ExecOptions> exec_options_from(const proto::ExecStart& request);

}  // namespace gondolin::control
