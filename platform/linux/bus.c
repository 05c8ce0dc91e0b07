/*
 * bus.c - the system bus (sd-bus) driven from our libevent loop.
 *
 * sd-bus has no loop of its own here: we watch sd_bus_get_fd() for the
 * events sd_bus_get_events() asks for, with sd_bus_get_timeout() as the
 * event's timeout, call sd_bus_process() until it has nothing left, and
 * re-arm. Sources (net.c for NetworkManager, idle.c for logind) attach
 * floating matches and calls whose lifetime is the bus's, so closing the bus
 * is all the clean-up they need. If the bus goes away, the sources fall back
 * to what they use without it.
 *
 * The first answer of each service is read synchronously at open (bounded
 * by BUS_GET_USEC): until NetworkManager has said "metered", an unmetered
 * guess from the interface name could start a job the user meant to hold
 * back. Later answers come asynchronously.
 */
#include "platform/linux/linux.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#if MCPJOB_WITH_SYSTEMD
#include <systemd/sd-bus.h>
#endif
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#if !MCPJOB_WITH_SYSTEMD
/* Built without libsystemd: there is no bus client, so the sources use what
 * they use without a bus (interface names for metered, loadavg for idle). */
bool linux_bus_open(struct linux_priv *lp) {
	(void)lp;
	log_debug("built without libsystemd (WITH_SYSTEMD=0): not asking NetworkManager or "
	          "logind; metered comes from interface names, idle from the load average");
	return false;
}

void linux_bus_arm(struct linux_priv *lp) {
	(void)lp;
}

void linux_bus_close(struct linux_priv *lp) {
	(void)lp;
}

int linux_bus_get_prop(struct linux_priv *lp, const char *dest, const char *path,
                       const char *iface, const char *name, char type, void *out) {
	(void)lp, (void)dest, (void)path, (void)iface, (void)name, (void)type, (void)out;
	return -ENOTSUP;
}

int linux_bus_changed_prop(struct sd_bus_message *m, const char *iface, const char *name,
                           char type, void *out) {
	(void)m, (void)iface, (void)name, (void)type, (void)out;
	return 0;
}
#else
#define BUS_GET_USEC (2 * 1000 * 1000) /* a local service answers in ms */

static void bus_lost(struct linux_priv *lp, int err) {
	log_warning("system bus connection lost (%s): NetworkManager and logind are no "
	            "longer watched; using interface names and loadavg instead",
	            strerror(err));
	linux_bus_close(lp);
	linux_net_bus_gone(lp);
	linux_idle_bus_gone(lp);
}

static void bus_cb(evutil_socket_t fd, short what, void *arg) {
	struct linux_priv *lp = arg;
	(void)fd;
	(void)what;
	int r;
	while ((r = sd_bus_process(lp->bus, NULL)) > 0)
		;
	if (r < 0) {
		bus_lost(lp, -r);
		return;
	}
	linux_bus_arm(lp);
}

bool linux_bus_open(struct linux_priv *lp) {
	sd_bus *bus = NULL;
	/* No $DBUS_SYSTEM_BUS_ADDRESS and nothing at the default address
	 * (sd_bus_default(3)): there is no bus to connect to, so do not load
	 * libsystemd to learn that (common/sdlib.h). */
	if (getenv("DBUS_SYSTEM_BUS_ADDRESS") == NULL &&
	    access("/run/dbus/system_bus_socket", F_OK) != 0) {
		log_debug("no system bus (/run/dbus/system_bus_socket: %s): not asking "
		          "NetworkManager or logind", strerror(errno));
		return false;
	}
	int r = sd_bus_open_system(&bus);
	if (r < 0) {
		log_debug("no system bus (%s): not asking NetworkManager or logind", strerror(-r));
		return false;
	}
	lp->bus = bus;
	lp->bus_ev = event_new(lp->p->base, -1, 0, bus_cb, lp);
	return true;
}

static struct timeval usec_until(uint64_t until) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	uint64_t d = until > now ? until - now : 0;
	return (struct timeval){.tv_sec = (time_t)(d / 1000000u), .tv_usec = (suseconds_t)(d % 1000000u)};
}

void linux_bus_arm(struct linux_priv *lp) {
	if (lp->bus == NULL)
		return;
	int fd = sd_bus_get_fd(lp->bus);
	int events = sd_bus_get_events(lp->bus);
	if (fd < 0 || events < 0) {
		bus_lost(lp, fd < 0 ? -fd : -events);
		return;
	}
	short what = (events & POLLIN ? EV_READ : 0) | (events & POLLOUT ? EV_WRITE : 0);
	event_del(lp->bus_ev);
	event_assign(lp->bus_ev, lp->p->base, fd, what, bus_cb, lp);
	uint64_t until = UINT64_MAX;
	if (sd_bus_get_timeout(lp->bus, &until) > 0 && until != UINT64_MAX) {
		struct timeval tv = usec_until(until);
		event_add(lp->bus_ev, &tv);
	} else {
		event_add(lp->bus_ev, NULL);
	}
}

void linux_bus_close(struct linux_priv *lp) {
	if (lp->bus_ev) {
		event_free(lp->bus_ev);
		lp->bus_ev = NULL;
	}
	/* No flush: nothing we send matters at exit, and a stuck bus must not
	 * hold up shutdown. Floating slots go with the bus. */
	lp->bus = sd_bus_close_unref(lp->bus);
}

int linux_bus_get_prop(struct linux_priv *lp, const char *dest, const char *path,
                       const char *iface, const char *name, char type, void *out) {
	sd_bus_message *m = NULL, *reply = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	char sig[2] = {type, '\0'};
	int r = sd_bus_message_new_method_call(lp->bus, &m, dest, path,
	                                       "org.freedesktop.DBus.Properties", "Get");
	if (r >= 0)
		r = sd_bus_message_append(m, "ss", iface, name);
	if (r >= 0)
		r = sd_bus_message_set_auto_start(m, 0); /* ask, do not start it */
	if (r >= 0)
		r = sd_bus_call(lp->bus, m, BUS_GET_USEC, &error, &reply);
	if (r >= 0)
		r = sd_bus_message_read(reply, "v", sig, out);
	if (r < 0)
		log_debug("%s %s: %s", dest, name, error.name ? error.name : strerror(-r));
	sd_bus_error_free(&error);
	sd_bus_message_unref(reply);
	sd_bus_message_unref(m);
	return r < 0 ? r : 0;
}

int linux_bus_changed_prop(sd_bus_message *m, const char *iface, const char *name,
                           char type, void *out) {
	const char *i, *k;
	char sig[2] = {type, '\0'};
	int r = sd_bus_message_read(m, "s", &i);
	if (r < 0 || strcmp(i, iface) != 0)
		return r < 0 ? r : 0;
	if ((r = sd_bus_message_enter_container(m, 'a', "{sv}")) < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		if ((r = sd_bus_message_read(m, "s", &k)) < 0)
			return r;
		if (strcmp(k, name) == 0) {
			if ((r = sd_bus_message_enter_container(m, 'v', sig)) < 0)
				return r;
			r = sd_bus_message_read_basic(m, type, out);
			return r < 0 ? r : 1;
		}
		if ((r = sd_bus_message_skip(m, "v")) < 0 || (r = sd_bus_message_exit_container(m)) < 0)
			return r;
	}
	return r;
}
#endif
