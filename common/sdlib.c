/*
 * sdlib.c - see sdlib.h. This is not a rewrite of anything libsystemd does:
 * each function below only forwards to libsystemd's own, found with dlsym()
 * once the library is loaded; the few that answer without loading it return
 * what libsystemd returns when the variable it reads is unset. It is how a
 * daemon that systemd did not start keeps libsystemd and the six libraries
 * it links out of its memory.
 */
#include "common/sdlib.h"

#include <stddef.h>

#ifndef MCPJOB_WITH_SYSTEMD
#define MCPJOB_WITH_SYSTEMD 1
#endif

#if !MCPJOB_WITH_SYSTEMD
/* Built without libsystemd: nothing to load, nothing calls this. */
int sdlib_need(char **cause) {
	if (cause != NULL)
		*cause = NULL;
	return -1;
}
bool sdlib_loaded(void) {
	return false;
}
#else
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-device.h>
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "common/dynlib.h"
#include "common/log.h"

/* What a forwarding function returns when libsystemd cannot be loaded. */
#define NOLIB (-ELIBACC)

/* F(return type, name, (parameters), (arguments), value when not loaded); V: returns void. */
#define SD_FNS(F, V)                                                                               \
	F(int, sd_bus_add_match_async,                                                             \
	  (sd_bus * b, sd_bus_slot * *s, const char *match, sd_bus_message_handler_t cb,           \
	   sd_bus_message_handler_t icb, void *u),                                                 \
	  (b, s, match, cb, icb, u), NOLIB)                                                        \
	F(int, sd_bus_call,                                                                        \
	  (sd_bus * b, sd_bus_message * m, uint64_t usec, sd_bus_error * e, sd_bus_message * *r),  \
	  (b, m, usec, e, r), NOLIB)                                                               \
	F(int, sd_bus_call_async,                                                                  \
	  (sd_bus * b, sd_bus_slot * *s, sd_bus_message * m, sd_bus_message_handler_t cb, void *u, \
	   uint64_t usec),                                                                         \
	  (b, s, m, cb, u, usec), NOLIB)                                                           \
	F(sd_bus *, sd_bus_close_unref, (sd_bus * b), (b), NULL)                                   \
	V(sd_bus_error_free, (sd_bus_error * e), (e))                                              \
	F(int, sd_bus_flush, (sd_bus * b), (b), NOLIB)                                             \
	F(int, sd_bus_get_events, (sd_bus * b), (b), NOLIB)                                        \
	F(int, sd_bus_get_fd, (sd_bus * b), (b), NOLIB)                                            \
	F(int, sd_bus_get_timeout, (sd_bus * b, uint64_t * t), (b, t), NOLIB)                      \
	F(int, sd_bus_match_signal_async,                                                          \
	  (sd_bus * b, sd_bus_slot * *r, const char *sender, const char *path,                     \
	   const char *interface, const char *member, sd_bus_message_handler_t cb,                 \
	   sd_bus_message_handler_t acb, void *u),                                                 \
	  (b, r, sender, path, interface, member, cb, acb, u), NOLIB)                              \
	F(int, sd_bus_message_appendv, (sd_bus_message * m, const char *t, va_list ap),            \
	  (m, t, ap), NOLIB)                                                                       \
	F(int, sd_bus_message_close_container, (sd_bus_message * m), (m), NOLIB)                   \
	F(int, sd_bus_message_enter_container, (sd_bus_message * m, char t, const char *c),        \
	  (m, t, c), NOLIB)                                                                        \
	F(int, sd_bus_message_exit_container, (sd_bus_message * m), (m), NOLIB)                    \
	F(const sd_bus_error *, sd_bus_message_get_error, (sd_bus_message * m), (m), NULL)         \
	F(int, sd_bus_message_is_method_error, (sd_bus_message * m, const char *n), (m, n), 0)     \
	F(int, sd_bus_message_new_method_call,                                                     \
	  (sd_bus * b, sd_bus_message * *m, const char *dest, const char *path,                    \
	   const char *interface, const char *member),                                             \
	  (b, m, dest, path, interface, member), NOLIB)                                            \
	F(int, sd_bus_message_open_container, (sd_bus_message * m, char t, const char *c),         \
	  (m, t, c), NOLIB)                                                                        \
	F(int, sd_bus_message_read_basic, (sd_bus_message * m, char t, void *p), (m, t, p), NOLIB) \
	F(int, sd_bus_message_readv, (sd_bus_message * m, const char *t, va_list ap), (m, t, ap),  \
	  NOLIB)                                                                                   \
	F(int, sd_bus_message_set_auto_start, (sd_bus_message * m, int b), (m, b), NOLIB)          \
	F(int, sd_bus_message_skip, (sd_bus_message * m, const char *t), (m, t), NOLIB)            \
	F(sd_bus_message *, sd_bus_message_unref, (sd_bus_message * m), (m), NULL)                 \
	F(int, sd_bus_open_system, (sd_bus * *r), (r), NOLIB)                                      \
	F(int, sd_bus_open_user, (sd_bus * *r), (r), NOLIB)                                        \
	F(int, sd_bus_process, (sd_bus * b, sd_bus_message * *r), (b, r), NOLIB)                   \
	F(int, sd_device_monitor_attach_event, (sd_device_monitor * m, sd_event * e), (m, e),      \
	  NOLIB)                                                                                   \
	F(int, sd_device_monitor_filter_add_match_subsystem_devtype,                               \
	  (sd_device_monitor * m, const char *s, const char *d), (m, s, d), NOLIB)                 \
	F(int, sd_device_monitor_new, (sd_device_monitor * *r), (r), NOLIB)                        \
	F(int, sd_device_monitor_start,                                                            \
	  (sd_device_monitor * m, sd_device_monitor_handler_t cb, void *u), (m, cb, u), NOLIB)     \
	F(sd_device_monitor *, sd_device_monitor_unref, (sd_device_monitor * m), (m), NULL)        \
	F(int, sd_event_get_fd, (sd_event * e), (e), NOLIB)                                        \
	F(int, sd_event_new, (sd_event * *e), (e), NOLIB)                                          \
	F(int, sd_event_run, (sd_event * e, uint64_t usec), (e, usec), NOLIB)                      \
	F(sd_event *, sd_event_unref, (sd_event * e), (e), NULL)                                   \
	F(int, sd_is_socket_unix, (int fd, int t, int l, const char *p, size_t n),                 \
	  (fd, t, l, p, n), NOLIB)                                                                 \
	F(int, sd_journal_sendv_with_location,                                                     \
	  (const char *file, const char *line, const char *func, const struct iovec *iov, int n),  \
	  (file, line, func, iov, n), NOLIB)

/* Forwarded, but answered without loading when their variable is unset (below). */
#define SD_ENV_FNS(F, V)                                                 \
	F(int, sd_notify, (int u, const char *state), (u, state), NOLIB) \
	F(int, sd_listen_fds, (int u), (u), NOLIB)                       \
	F(int, sd_watchdog_enabled, (int u, uint64_t *usec), (u, usec), NOLIB)

/* The pointers dlsym() fills. */
#define PTR_F(ret, name, params, args, fail) static ret(*p_##name) params;
#define PTR_V(name, params, args)            static void(*p_##name) params;
SD_FNS(PTR_F, PTR_V)
SD_ENV_FNS(PTR_F, PTR_V)

#define SYM_F(ret, name, params, args, fail) { #name, &p_##name },
#define SYM_V(name, params, args)            { #name, &p_##name },
static const struct dynlib_sym sd_syms[] = { SD_FNS(SYM_F, SYM_V)
	                                             SD_ENV_FNS(SYM_F, SYM_V){ NULL, NULL } };

static struct dynlib sd_lib = DYNLIB_INIT("libsystemd", "MCPJOB_LIBSYSTEMD", SDLIB_FILE,
                                          SDLIB_PACKAGE, sd_syms, NULL);
static atomic_flag sd_reported = ATOMIC_FLAG_INIT;

int sdlib_need(char **cause) {
	return dynlib_need(&sd_lib, cause);
}

bool sdlib_loaded(void) {
	return dynlib_loaded(&sd_lib);
}

/* A forwarding function's load: a failure is logged once (the caller falls back). */
static int fwd_need(void) {
	if (sdlib_need(NULL) == 0)
		return 0;
	if (!atomic_flag_test_and_set(&sd_reported))
		log_warning("%s: what needs it (the system and session bus, udev) is off",
		            dynlib_cause(&sd_lib));
	return -1;
}

/* The forwarding functions. */
#define FWD_F(ret, name, params, args, fail) \
	ret(name) params {                   \
		if (fwd_need() < 0)          \
			return fail;         \
		return p_##name args;        \
	}
#define FWD_V(name, params, args)      \
	void(name) params {            \
		if (fwd_need() == 0)   \
			p_##name args; \
	}
SD_FNS(FWD_F, FWD_V)

/*
 * Without the variable each reads, libsystemd answers 0 and (asked to) unsets
 * the variables it would have unset: the same here, without loading it.
 */
int(sd_notify)(int unset_environment, const char *state) {
	if (state == NULL)
		return -EINVAL;
	if (getenv("NOTIFY_SOCKET") == NULL)
		return 0;
	if (fwd_need() < 0)
		return NOLIB;
	return p_sd_notify(unset_environment, state);
}

int(sd_listen_fds)(int unset_environment) {
	if (getenv("LISTEN_PID") == NULL) {
		if (unset_environment) {
			unsetenv("LISTEN_PID");
			unsetenv("LISTEN_FDS");
			unsetenv("LISTEN_FDNAMES");
		}
		return 0;
	}
	if (fwd_need() < 0)
		return NOLIB;
	return p_sd_listen_fds(unset_environment);
}

int(sd_watchdog_enabled)(int unset_environment, uint64_t *usec) {
	if (getenv("WATCHDOG_USEC") == NULL) {
		if (unset_environment)
			unsetenv("WATCHDOG_PID");
		return 0;
	}
	if (fwd_need() < 0)
		return NOLIB;
	return p_sd_watchdog_enabled(unset_environment, usec);
}

/* The variadic ones: their va_list forms, or composed as libsystemd composes them. */
int(sd_notifyf)(int unset_environment, const char *format, ...) {
	if (format == NULL)
		return -EINVAL;
	va_list ap;
	va_start(ap, format);
	char *p = NULL;
	int n = vasprintf(&p, format, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	int r = sd_notify(unset_environment, p);
	free(p);
	return r;
}

int(sd_bus_message_append)(sd_bus_message *m, const char *types, ...) {
	if (fwd_need() < 0)
		return NOLIB;
	va_list ap;
	va_start(ap, types);
	int r = p_sd_bus_message_appendv(m, types, ap);
	va_end(ap);
	return r;
}

int(sd_bus_message_read)(sd_bus_message *m, const char *types, ...) {
	if (fwd_need() < 0)
		return NOLIB;
	va_list ap;
	va_start(ap, types);
	int r = p_sd_bus_message_readv(m, types, ap);
	va_end(ap);
	return r;
}

/* sd_bus_call_method_async(3): a new method call, its arguments appended, sent with the
 * default timeout; the message is the call's own (unreferenced here once sent). */
int(sd_bus_call_method_async)(sd_bus *bus, sd_bus_slot **slot, const char *destination,
                              const char *path, const char *interface, const char *member,
                              sd_bus_message_handler_t callback, void *userdata, const char *types,
                              ...) {
	if (fwd_need() < 0)
		return NOLIB;
	sd_bus_message *m = NULL;
	int r = p_sd_bus_message_new_method_call(bus, &m, destination, path, interface, member);
	if (r < 0)
		return r;
	if (types != NULL && *types != '\0') {
		va_list ap;
		va_start(ap, types);
		r = p_sd_bus_message_appendv(m, types, ap);
		va_end(ap);
	}
	if (r >= 0)
		r = p_sd_bus_call_async(bus, slot, m, callback, userdata, 0);
	p_sd_bus_message_unref(m);
	return r;
}
#endif
