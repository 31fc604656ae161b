#include "CSignals.h"
#include <signal.h>
#include <string.h>
#include <unistd.h>

// Written only by the handler, read by the training loop between steps. sig_atomic_t with
// volatile is what C guarantees to be safe to store from a signal handler (C11 7.14.1.1).
static volatile sig_atomic_t pending = 0;

static void on_signal(int sig) {
    if (pending != 0) {
        // A second signal: the user wants out now. Only async-signal-safe calls here (POSIX
        // 2.4.3): write(2) and _exit(2).
        static const char msg[] = "moco: second signal, exiting without a checkpoint\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        _exit(128 + sig);
    }
    pending = sig;
}

int moco_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;   // slow system calls (reads, writes) resume instead of failing
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGTERM, SIGINT, SIGUSR1};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        if (sigaction(sigs[i], &sa, NULL) != 0) return -1;
    }
    return 0;
}

int moco_signal_pending(void) { return (int)pending; }

void moco_signal_reset(void) { pending = 0; }
