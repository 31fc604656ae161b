#ifndef MOCO_CSIGNALS_H
#define MOCO_CSIGNALS_H

/// Installs handlers for SIGTERM, SIGINT and SIGUSR1 (sigaction, SA_RESTART). The first such
/// signal is only recorded (moco_signal_pending() returns it); a second one ends the process at
/// once with _exit(128 + signal), the shell's convention for death by that signal.
/// Returns 0, or -1 with errno set if a handler could not be installed.
int moco_signals_install(void);

/// The first preemption signal received since installation, or 0.
int moco_signal_pending(void);

/// Forgets a recorded signal (tests).
void moco_signal_reset(void);

#endif
