// Threads of ours that write to sockets and pipes a peer may close (the io
// thread: libslirp's own send() calls carry no MSG_NOSIGNAL) call this first,
// so a closed peer is an EPIPE for that write, not a SIGPIPE that kills the
// embedding process. The signal stays pending on the blocked thread, harmless.
#pragma once

#include <pthread.h>

#include <csignal>

namespace gondolin {

inline void block_sigpipe_in_this_thread() {
  sigset_t pipe_signal;
  ::sigemptyset(&pipe_signal);
  ::sigaddset(&pipe_signal, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
}

}  // namespace gondolin
