/*
 * sdlib.h - libsystemd, loaded (dlopen) the first time it is needed, not at
 * start-up.
 *
 * Linked, libsystemd maps itself and six more libraries (gcrypt, gpg-error,
 * lzma, zstd, lz4, cap: ~300 kB of PSS) into every mcpjobd, although a
 * daemon that systemd did not start (no $NOTIFY_SOCKET, $LISTEN_PID or
 * $WATCHDOG_USEC), that logs to stderr and has no system bus or udevd to
 * talk to never calls it. So nothing links it: sdlib.c defines the sd_*
 * functions the daemon calls, under their own names and prototypes (the
 * callers include <systemd/sd-*.h> as usual), each forwarding to the
 * function dlsym() found in libsystemd.so.0.
 *
 * A few never load it, returning what libsystemd itself returns there:
 * sd_notify() and sd_notifyf() without $NOTIFY_SOCKET (0: nobody listens),
 * sd_listen_fds() without $LISTEN_PID (0: no socket passed),
 * sd_watchdog_enabled() without $WATCHDOG_USEC (0: no watchdog).
 * The journal is only written (and so libsystemd loaded) when the log
 * target is the journal. mcpjobd loads it up front when it is started as a
 * systemd service or told to log to the journal, so a missing library is a
 * start-up error naming the package; for the optional parts (sd-bus to
 * logind, NetworkManager, UPower, the session bus; sd-device) a library that
 * cannot be loaded makes the entry point (sd_bus_open_*, sd_event_new,
 * sd_device_monitor_new) fail with -ELIBACC, once logged, and the code's
 * fallbacks for "no bus" / "no udevd" apply.
 *
 * Tests only: $MCPJOB_LIBSYSTEMD names the file to load instead of
 * libsystemd.so.0 (to exercise the error when it cannot be loaded).
 * Built without libsystemd (WITH_SYSTEMD=0) this module is empty.
 */
#ifndef MCPJOB_SDLIB_H
#define MCPJOB_SDLIB_H

#include <stdbool.h>

/* The file loaded and the Debian package that ships it. */
#ifndef SDLIB_FILE
#define SDLIB_FILE "libsystemd.so.0"
#endif
#ifndef SDLIB_PACKAGE
#define SDLIB_PACKAGE "libsystemd0"
#endif

/*
 * sdlib_need() - load libsystemd now if it is not loaded yet. 0, or -1 with
 * *@cause (the caller frees it; NULL: not wanted) naming the library, why
 * it failed and the package to install. A failure is remembered: later
 * calls fail the same way and the forwarding functions return -ELIBACC
 * (NULL for pointers). Thread-safe.
 */
int sdlib_need(char **cause);
/* Whether libsystemd is loaded (never loads it). */
bool sdlib_loaded(void);

#endif
