/*
 * systemd_compat.h - libsystemd's sd-daemon calls, or their no-systemd
 * meaning in a build without libsystemd (make WITH_SYSTEMD=0).
 *
 * Without systemd there is no manager to notify, no socket handed over and
 * no watchdog: sd_notify() reports that nobody listens (0), sd_listen_fds()
 * that no socket was passed, sd_watchdog_enabled() that none is asked for.
 * mcpjobd then listens on its own socket, as it does outside a unit.
 */
#ifndef MCPJOB_SYSTEMD_COMPAT_H
#define MCPJOB_SYSTEMD_COMPAT_H

#ifndef MCPJOB_WITH_SYSTEMD
#define MCPJOB_WITH_SYSTEMD 1
#endif

#if MCPJOB_WITH_SYSTEMD
#include <systemd/sd-daemon.h>
#else
#include <stddef.h>
#include <stdint.h>

#define SD_LISTEN_FDS_START 3

static inline int sd_notify(int unset_environment, const char *state) {
	(void)unset_environment;
	(void)state;
	return 0;
}
static inline int sd_notifyf(int unset_environment, const char *format, ...)
	__attribute__((format(printf, 2, 3)));
static inline int sd_notifyf(int unset_environment, const char *format, ...) {
	(void)unset_environment;
	(void)format;
	return 0;
}
static inline int sd_listen_fds(int unset_environment) {
	(void)unset_environment;
	return 0;
}
static inline int sd_is_socket_unix(int fd, int type, int listening, const char *path,
                                    size_t length) {
	(void)fd, (void)type, (void)listening, (void)path, (void)length;
	return 0;
}
static inline int sd_watchdog_enabled(int unset_environment, uint64_t *usec) {
	(void)unset_environment;
	*usec = 0;
	return 0;
}
#endif

#endif
