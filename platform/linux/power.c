/*
 * power.c - charging and battery_low from the power_supply class in sysfs.
 *
 * The rule (linux_power_read):
 *   charging     a "Mains", "USB*" or "Wireless" supply is online, or a
 *                "Battery" says "Charging" or "Full"; with no battery at all
 *                the machine runs on mains, so charging.
 *   battery_low  a "Battery" is "Discharging" with capacity below 15 %.
 * Batteries with scope "Device" (a mouse, a headset) are not the machine's
 * and are ignored. What cannot be read makes the value unknown unless the
 * rest already decides it (an online charger means charging whatever else).
 *
 * Changes: udev's "power_supply" events through an sd-device monitor. Its
 * sd-event loop is driven from ours: libevent watches sd_event_get_fd() and
 * we run sd_event_run(e, 0) when it is readable (libsystemd 252 has no
 * sd_device_monitor_get_fd()). Where there are no udev events - a tree other
 * than /sys/class/power_supply (tests), no udevd (containers), or the
 * monitor fails - the tree is re-read every 30 s instead: the only power
 * timer, slow because power state changes over minutes, and a sysfs read of
 * a few small files costs nothing. It runs only while some job waits on
 * charging or battery (platform_watch()).
 */
#include "platform/linux/linux.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if MCPJOB_WITH_SYSTEMD
#include <systemd/sd-device.h>
#include <systemd/sd-event.h>
#endif
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"

#define POWER_SYSFS "/sys/class/power_supply"
#define POWER_MAX_SUPPLIES 64 /* a machine has a handful */
#define POWER_POLL_SEC 30
#define POWER_LOW_PERCENT 15

struct linux_power {
#if MCPJOB_WITH_SYSTEMD
	sd_event *sde;
	sd_device_monitor *mon;
#endif
	struct event *sde_ev;
	struct event *timer; /* without udev: armed only while a job waits on power */
	bool warned;
};

struct power_scan {
	bool any_battery, charging, low;
	bool charging_unknown, low_unknown;
	char *cause; /* the first thing that could not be read */
};

/* Read a small sysfs attribute without its trailing newline; 0 or -errno. */
static int power_attr(const char *dir, const char *name, char *buf, size_t size) {
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n;
	do
		n = read(fd, buf, size - 1);
	while (n < 0 && errno == EINTR);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static void power_unreadable(struct power_scan *s, const char *dir, const char *name,
                             int err, bool charge, bool low) {
	s->charging_unknown |= charge;
	s->low_unknown |= low;
	if (s->cause == NULL)
		s->cause = xasprintf("cannot read %s/%s: %s", dir, name, strerror(-err));
}

/* Capacity in percent: "capacity", else energy_now/energy_full or
 * charge_now/charge_full (some batteries have only those). */
static int power_capacity(const char *dir, long *pct) {
	char a[32], b[32];
	int r = power_attr(dir, "capacity", a, sizeof a);
	if (r == 0) {
		*pct = strtol(a, NULL, 10);
		return 0;
	}
	if ((power_attr(dir, "energy_now", a, sizeof a) == 0 &&
	     power_attr(dir, "energy_full", b, sizeof b) == 0) ||
	    (power_attr(dir, "charge_now", a, sizeof a) == 0 &&
	     power_attr(dir, "charge_full", b, sizeof b) == 0)) {
		long full = strtol(b, NULL, 10);
		if (full > 0) {
			*pct = strtol(a, NULL, 10) * 100 / full;
			return 0;
		}
	}
	return r;
}

static void power_scan_battery(struct power_scan *s, const char *dir) {
	char status[32];
	long pct = 100;
	s->any_battery = true;
	int r = power_attr(dir, "status", status, sizeof status);
	if (r < 0) {
		power_unreadable(s, dir, "status", r, true, true);
		return;
	}
	if (strcmp(status, "Charging") == 0 || strcmp(status, "Full") == 0)
		s->charging = true;
	if (strcmp(status, "Discharging") != 0)
		return;
	if ((r = power_capacity(dir, &pct)) < 0)
		power_unreadable(s, dir, "capacity", r, false, true);
	else if (pct < POWER_LOW_PERCENT)
		s->low = true;
}

static void power_scan_supply(struct power_scan *s, const char *root, const char *name) {
	char dir[PATH_MAX], type[32], buf[32];
	snprintf(dir, sizeof dir, "%s/%s", root, name);
	int r = power_attr(dir, "type", type, sizeof type);
	if (r < 0) {
		power_unreadable(s, dir, "type", r, true, true);
		return;
	}
	if (power_attr(dir, "scope", buf, sizeof buf) == 0 && strcmp(buf, "Device") == 0)
		return;
	if (strcmp(type, "Battery") == 0) {
		power_scan_battery(s, dir);
	} else if (strcmp(type, "Mains") == 0 || fnmatch("USB*", type, 0) == 0 ||
	           strcmp(type, "Wireless") == 0) {
		if ((r = power_attr(dir, "online", buf, sizeof buf)) < 0)
			power_unreadable(s, dir, "online", r, true, false);
		else if (strtol(buf, NULL, 10) != 0)
			s->charging = true;
	}
}

int linux_power_read(const char *path, int *charging, int *battery_low, char **cause) {
	DIR *d = opendir(path);
	if (d == NULL) {
		*charging = *battery_low = DEV_UNKNOWN;
		*cause = xasprintf("cannot list power supplies in %s: %s", path, strerror(errno));
		return -1;
	}
	struct power_scan s = {0};
	struct dirent *de;
	size_t n = 0;
	while ((de = readdir(d)) != NULL && n < POWER_MAX_SUPPLIES) {
		if (de->d_name[0] == '.')
			continue;
		n++;
		power_scan_supply(&s, path, de->d_name);
	}
	closedir(d);
	*charging = s.charging ? 1 : s.charging_unknown ? DEV_UNKNOWN : s.any_battery ? 0 : 1;
	*battery_low = s.low ? 1 : s.low_unknown ? DEV_UNKNOWN : 0;
	if (s.cause == NULL)
		return 0;
	*cause = s.cause;
	return -1;
}

static const char *power_path(const struct linux_priv *lp) {
	const struct device_settings *s = lp->p->settings;
	return s && s->power_supply_path ? s->power_supply_path : POWER_SYSFS;
}

void linux_power_refresh(struct linux_priv *lp) {
	char *cause = NULL;
	if (linux_power_read(power_path(lp), &lp->now.charging, &lp->now.battery_low, &cause) < 0) {
		if (!lp->power->warned)
			log_warning("power state partly unknown: %s (constraints on charging and "
			            "battery treat it as unknown)",
			            cause);
		lp->power->warned = true;
		free(cause);
	}
	linux_publish(lp);
}

#if MCPJOB_WITH_SYSTEMD
static int power_uevent_cb(sd_device_monitor *m, sd_device *dev, void *arg) {
	(void)m;
	(void)dev;
	linux_power_refresh(arg); /* re-read all: a plug event changes several */
	return 0;
}

static void power_sde_cb(evutil_socket_t fd, short what, void *arg) {
	struct linux_power *pw = arg;
	(void)fd;
	(void)what;
	/* Bounded: the fd is level-triggered, anything left wakes us again. */
	for (int i = 0; i < 16 && sd_event_run(pw->sde, 0) > 0; i++)
		;
}

#endif

static void power_timer_cb(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	linux_power_refresh(arg);
}

/* Watch udev events; -errno (nothing to clean up) when there are none. */
static int power_monitor_open(struct linux_priv *lp) {
	struct linux_power *pw = lp->power;
	int r;
	if (strcmp(power_path(lp), POWER_SYSFS) != 0)
		return -ENOTSUP;
	if (access("/run/udev/control", F_OK) < 0)
		return -ENOTCONN; /* no udevd: the monitor would open but stay silent */
#if !MCPJOB_WITH_SYSTEMD
	(void)pw;
	(void)r;
	return -ENOTSUP; /* built without libsystemd: no sd-device monitor */
#else
	if ((r = sd_event_new(&pw->sde)) < 0 || (r = sd_device_monitor_new(&pw->mon)) < 0 ||
	    (r = sd_device_monitor_filter_add_match_subsystem_devtype(pw->mon, "power_supply",
	                                                               NULL)) < 0 ||
	    (r = sd_device_monitor_attach_event(pw->mon, pw->sde)) < 0 ||
	    (r = sd_device_monitor_start(pw->mon, power_uevent_cb, lp)) < 0) {
		pw->mon = sd_device_monitor_unref(pw->mon);
		pw->sde = sd_event_unref(pw->sde);
		return r;
	}
	pw->sde_ev = event_new(lp->p->base, sd_event_get_fd(pw->sde), EV_READ | EV_PERSIST,
	                       power_sde_cb, pw);
	event_add(pw->sde_ev, NULL);
	return 0;
#endif
}

void linux_power_open(struct linux_priv *lp) {
	lp->power = xcalloc(1, sizeof *lp->power);
	int r = power_monitor_open(lp);
	if (r < 0) {
		log_debug("no udev events for %s (%s): re-reading it every %d s while a job "
		          "waits on power", power_path(lp), strerror(-r), POWER_POLL_SEC);
		lp->power->timer = event_new(lp->p->base, -1, EV_PERSIST, power_timer_cb, lp);
	}
	linux_power_refresh(lp);
}

void linux_power_poll(struct linux_priv *lp, bool on) {
	struct timeval tv = {.tv_sec = POWER_POLL_SEC};
	if (lp->power == NULL || lp->power->timer == NULL)
		return;
	if (on) {
		linux_power_refresh(lp);
		event_add(lp->power->timer, &tv);
	} else {
		event_del(lp->power->timer);
	}
}

void linux_power_close(struct linux_priv *lp) {
	struct linux_power *pw = lp->power;
	if (pw == NULL)
		return;
	if (pw->timer)
		event_free(pw->timer);
	if (pw->sde_ev)
		event_free(pw->sde_ev);
#if MCPJOB_WITH_SYSTEMD
	sd_device_monitor_unref(pw->mon);
	sd_event_unref(pw->sde);
#endif
	free(pw);
	lp->power = NULL;
}
