/*
 * idle.c - is the device idle?
 *
 * With logind on the system bus: its Manager's IdleHint (true when every
 * session is idle and nothing inhibits idle), kept current by its
 * PropertiesChanged signal. Without logind (no bus, no logind, or the bus
 * lost): idle when the 1-minute load average is below settings->idle_load,
 * checked every 60 s - a timer because the kernel sends no event when the
 * load changes, and 60 s because the 1-minute average moves no faster.
 * The timer runs only while some job waits on idle (platform_watch()).
 */
#include "platform/linux/linux.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#if MCPJOB_WITH_SYSTEMD
#include <systemd/sd-bus.h>
#endif
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"

#define LOGIND_BUS   "org.freedesktop.login1"
#define LOGIND_PATH  "/org/freedesktop/login1"
#define LOGIND_IFACE "org.freedesktop.login1.Manager"
#define IDLE_LOADAVG_SEC 60
#define IDLE_DEFAULT_LOAD 0.5

struct linux_idle {
	bool logind;         /* IdleHint is the source */
	struct event *timer; /* loadavg fallback, armed only while polling */
	bool polling;        /* some job waits on idle */
	bool warned;
};

int linux_idle_from_loadavg(const char *text, double idle_load) {
	char *end;
	double load = strtod(text, &end);
	if (end == text || load < 0)
		return DEV_UNKNOWN;
	return load < idle_load;
}

static void idle_read_loadavg(struct linux_priv *lp) {
	const struct device_settings *s = lp->p->settings;
	char buf[128];
	ssize_t n = -1;
	int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	lp->now.idle = linux_idle_from_loadavg(buf, s ? s->idle_load : IDLE_DEFAULT_LOAD);
	if (lp->now.idle == DEV_UNKNOWN && !lp->idle->warned)
		log_warning("idle state unknown: cannot read the load average from /proc/loadavg "
		            "(%s); constraints on idle treat it as unknown",
		            n < 0 ? strerror(errno) : "unexpected content");
	lp->idle->warned |= lp->now.idle == DEV_UNKNOWN;
	linux_publish(lp);
}

static void idle_timer_cb(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	idle_read_loadavg(arg);
}

static void idle_use_loadavg(struct linux_priv *lp) {
	struct linux_idle *id = lp->idle;
	id->logind = false;
	if (id->timer == NULL)
		id->timer = event_new(lp->p->base, -1, EV_PERSIST, idle_timer_cb, lp);
	if (id->polling)
		linux_idle_poll(lp, true);
	idle_read_loadavg(lp);
}

void linux_idle_poll(struct linux_priv *lp, bool on) {
	struct linux_idle *id = lp->idle;
	struct timeval tv = {.tv_sec = IDLE_LOADAVG_SEC};
	id->polling = on;
	if (id->timer == NULL || id->logind)
		return;
	if (on) {
		idle_read_loadavg(lp);
		event_add(id->timer, &tv);
	} else {
		event_del(id->timer);
	}
}

#if MCPJOB_WITH_SYSTEMD
static int idle_changed_cb(sd_bus_message *m, void *arg, sd_bus_error *err) {
	struct linux_priv *lp = arg;
	int hint;
	(void)err;
	if (lp->idle->logind && linux_bus_changed_prop(m, LOGIND_IFACE, "IdleHint", 'b', &hint) > 0) {
		lp->now.idle = !!hint;
		linux_publish(lp);
	}
	return 0;
}

/* Subscribe first, then ask: a change after the answer is then never missed. */
static void idle_ask_logind(struct linux_priv *lp) {
	int hint;
	int r = sd_bus_match_signal_async(lp->bus, NULL, LOGIND_BUS, LOGIND_PATH,
	                                  "org.freedesktop.DBus.Properties", "PropertiesChanged",
	                                  idle_changed_cb, NULL, lp);
	if (r >= 0)
		r = linux_bus_get_prop(lp, LOGIND_BUS, LOGIND_PATH, LOGIND_IFACE, "IdleHint", 'b',
		                       &hint);
	if (r < 0) {
		log_info("logind does not answer (%s): idle means load average below %.2f",
		         strerror(-r), lp->p->settings ? lp->p->settings->idle_load : IDLE_DEFAULT_LOAD);
		idle_use_loadavg(lp);
		return;
	}
	lp->idle->logind = true;
	lp->now.idle = !!hint;
	linux_publish(lp);
}
#else
static void idle_ask_logind(struct linux_priv *lp) {
	idle_use_loadavg(lp); /* never reached: there is no bus without libsystemd */
}
#endif

void linux_idle_open(struct linux_priv *lp) {
	lp->idle = xcalloc(1, sizeof *lp->idle);
	if (lp->bus)
		idle_ask_logind(lp);
	else
		idle_use_loadavg(lp);
}

void linux_idle_refresh(struct linux_priv *lp) {
	if (lp->idle->timer)
		idle_read_loadavg(lp);
}

void linux_idle_bus_gone(struct linux_priv *lp) {
	if (lp->idle->timer == NULL) /* logind was (or was about to be) the source */
		idle_use_loadavg(lp);
}

void linux_idle_close(struct linux_priv *lp) {
	if (lp->idle == NULL)
		return;
	if (lp->idle->timer)
		event_free(lp->idle->timer);
	free(lp->idle);
	lp->idle = NULL;
}
