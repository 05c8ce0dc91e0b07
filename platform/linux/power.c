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
 * Changes, by the first source that applies:
 *   udevd runs (/run/udev/control)  its "power_supply" events through an
 *       sd-device monitor. Its sd-event loop is driven from ours: libevent
 *       watches sd_event_get_fd() and we run sd_event_run(e, 0) when it is
 *       readable (libsystemd 252 has no sd_device_monitor_get_fd()).
 *   no udevd (containers, small VMs, WITH_SYSTEMD=0)  the kernel's own
 *       uevents: a NETLINK_KOBJECT_UEVENT socket in multicast group 1 on our
 *       loop. Only datagrams the kernel sent are believed (sender port 0 and
 *       SCM_CREDENTIALS of uid 0: any root process may send to that group),
 *       only SUBSYSTEM=power_supply makes us re-read the tree, the receive
 *       buffer is bounded (an overflow re-reads, as it may have hidden a
 *       change). No timer: an idle machine sends no uevents, so a job
 *       waiting on charging costs no wake-up. The kernel filters nothing by
 *       subsystem, so any device's uevent (a hotplug) wakes us once.
 *   neither - a tree other than /sys/class/power_supply (tests, a host's
 *       sysfs mounted elsewhere), a user namespace (the kernel sends uevents
 *       only to network namespaces of the initial user namespace), or a
 *       socket that cannot be opened  the tree is re-read every 30 s, with a
 *       log line saying why: slow because power state changes over minutes,
 *       and a sysfs read of a few small files costs nothing. It runs only
 *       while some job waits on charging or battery (platform_watch()).
 */
#include "platform/linux/linux.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
#define POWER_UEVENT_MAX 8192     /* the kernel's are < 2.1 kB (UEVENT_BUFFER_SIZE) */
#define POWER_UEVENT_RCVBUF 65536 /* the socket's queue; more is an overflow */
#define POWER_UEVENT_BATCH 32     /* datagrams per wake-up; the rest wake us again */

struct linux_power {
#if MCPJOB_WITH_SYSTEMD
	sd_event *sde;
	sd_device_monitor *mon;
#endif
	struct event *sde_ev;
	int nl_fd; /* NETLINK_KOBJECT_UEVENT, or -1 */
	struct event *nl_ev;
	struct event *timer; /* without events: armed only while a job waits on power */
	struct linux_power_stats stats;
	bool warned, nl_warned;
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
static int power_udev_cb(sd_device_monitor *m, sd_device *dev, void *arg) {
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

/* The value of @key ("SUBSYSTEM=") in a uevent's NUL-separated
 * KEY=VALUE list @env of @len bytes, or NULL; bounded by @len. */
static const char *uevent_get(const char *env, size_t len, const char *key, size_t *vlen) {
	size_t klen = strlen(key);
	for (const char *p = env, *end = env + len; p < end;) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));
		size_t n = nul ? (size_t)(nul - p) : (size_t)(end - p);
		if (n >= klen && memcmp(p, key, klen) == 0) {
			*vlen = n - klen;
			return p + klen;
		}
		p += n + 1;
	}
	return NULL;
}

int linux_power_uevent_classify(const char *buf, size_t len, uint32_t sender_port,
                          const struct ucred *cred, const char **why) {
	static const char subsystem[] = "power_supply";
	*why = NULL;
	if (sender_port != 0) {
		*why = "not sent by the kernel (sender port is not 0)";
		return LINUX_POWER_UEVENT_REJECT;
	}
	if (cred == NULL || cred->uid != 0 || cred->pid != 0) {
		*why = cred ? "not sent by the kernel (credentials are not pid 0, uid 0)"
		            : "no sender credentials";
		return LINUX_POWER_UEVENT_REJECT;
	}
	/* The kernel's format: "ACTION@DEVPATH\0" then KEY=VALUE\0 pairs. */
	const char *nul = memchr(buf, '\0', len);
	if (nul == NULL || memchr(buf, '@', (size_t)(nul - buf)) == NULL) {
		*why = "not a kernel uevent (no ACTION@DEVPATH header)";
		return LINUX_POWER_UEVENT_REJECT;
	}
	const char *env = nul + 1;
	size_t vlen;
	const char *v = uevent_get(env, len - (size_t)(env - buf), "SUBSYSTEM=", &vlen);
	if (v && vlen == sizeof subsystem - 1 && memcmp(v, subsystem, vlen) == 0)
		return LINUX_POWER_UEVENT_POWER;
	return LINUX_POWER_UEVENT_OTHER;
}

/* One datagram: 1 to re-read the tree, 0 not, -1 when the queue is empty. */
static int power_uevent_recv(struct linux_power *pw, char *buf, size_t size) {
	struct sockaddr_nl from;
	char cbuf[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov,
	                    .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	ssize_t n = recvmsg(pw->nl_fd, &mh, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		if (errno == ENOBUFS) { /* the queue overflowed: a change may be lost */
			pw->stats.overflows++;
			return 1;
		}
		if (errno != EAGAIN && !pw->nl_warned) {
			log_warning("cannot read kernel uevents (power_supply changes): %s",
			            strerror(errno));
			pw->nl_warned = true;
		}
		return -1;
	}
	pw->stats.seen++;
	const struct ucred *cred = NULL;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len == CMSG_LEN(sizeof *cred))
			cred = (const struct ucred *)(void *)CMSG_DATA(c);
	const char *why = "truncated (longer than any kernel uevent)";
	int r = LINUX_POWER_UEVENT_REJECT;
	if (!(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && mh.msg_namelen == sizeof from)
		r = linux_power_uevent_classify(buf, (size_t)n, from.nl_pid, cred, &why);
	if (r == LINUX_POWER_UEVENT_REJECT) {
		if (++pw->stats.rejected <= 10) /* bounded: root can send us as many as it likes */
			log_debug("uevent ignored: %s%s", why,
			          pw->stats.rejected == 10 ? " (not logged any more)" : "");
		return 0;
	}
	pw->stats.power += r == LINUX_POWER_UEVENT_POWER;
	return r == LINUX_POWER_UEVENT_POWER;
}

static void power_uevent_cb(evutil_socket_t fd, short what, void *arg) {
	struct linux_priv *lp = arg;
	char buf[POWER_UEVENT_MAX];
	bool reread = false;
	(void)fd;
	(void)what;
	/* Bounded; the fd is level-triggered, anything left wakes us again. */
	for (int i = 0; i < POWER_UEVENT_BATCH; i++) {
		int r = power_uevent_recv(lp->power, buf, sizeof buf);
		if (r < 0)
			break;
		reread |= r == 1;
	}
	if (reread)
		linux_power_refresh(lp); /* re-read all: a plug event changes several */
}

/* True when we run in a user namespace other than the initial one, where
 * the kernel's uevents never arrive (lib/kobject_uevent.c sends them only to
 * sockets of network namespaces owned by the initial user namespace). */
static bool power_in_user_ns(void) {
	char buf[128];
	int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false; /* no /proc: cannot tell, try */
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	unsigned long inside, outside, count;
	return sscanf(buf, "%lu %lu %lu", &inside, &outside, &count) != 3 || inside != 0 ||
	       outside != 0 || count != 4294967295UL;
}

/* The kernel's uevents on our loop; -errno (nothing to clean up). */
static int power_uevent_open(struct linux_priv *lp) {
	struct linux_power *pw = lp->power;
	if (power_in_user_ns())
		return -EPERM;
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	                NETLINK_KOBJECT_UEVENT);
	if (fd < 0)
		return -errno;
	int one = 1, rcvbuf = POWER_UEVENT_RCVBUF;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1}; /* 1: the kernel's */
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	socklen_t salen = sizeof sa;
	if (getsockname(fd, (struct sockaddr *)&sa, &salen) == 0)
		pw->stats.port = sa.nl_pid;
	pw->nl_fd = fd;
	pw->nl_ev = event_new(lp->p->base, fd, EV_READ | EV_PERSIST, power_uevent_cb, lp);
	event_add(pw->nl_ev, NULL);
	return 0;
}

static void power_timer_cb(evutil_socket_t fd, short what, void *arg) {
	(void)fd;
	(void)what;
	linux_power_refresh(arg);
}

/* Watch udev events; -errno (nothing to clean up) when there are none. */
static int power_udev_open(struct linux_priv *lp) {
	struct linux_power *pw = lp->power;
	int r;
#if !MCPJOB_WITH_SYSTEMD
	(void)pw;
	(void)r;
	return -ENOTSUP; /* built without libsystemd: no sd-device monitor */
#else
	if ((r = sd_event_new(&pw->sde)) < 0 || (r = sd_device_monitor_new(&pw->mon)) < 0 ||
	    (r = sd_device_monitor_filter_add_match_subsystem_devtype(pw->mon, "power_supply",
	                                                               NULL)) < 0 ||
	    (r = sd_device_monitor_attach_event(pw->mon, pw->sde)) < 0 ||
	    (r = sd_device_monitor_start(pw->mon, power_udev_cb, lp)) < 0) {
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

/* Events for the tree, as the top of the file says; a poll when none come. */
static void power_events_open(struct linux_priv *lp) {
	struct linux_power *pw = lp->power;
	const char *path = power_path(lp), *why;
	int r = 0;
	if (strcmp(path, POWER_SYSFS) != 0) {
		why = "it is not " POWER_SYSFS ", so no uevent describes it";
	} else if (access("/run/udev/control", F_OK) == 0 && (r = power_udev_open(lp)) == 0) {
		pw->stats.source = "udev";
		log_debug("power: udev events for %s", path);
		return;
	} else if ((r = power_uevent_open(lp)) == 0) {
		pw->stats.source = "kernel";
		log_debug("power: kernel uevents (NETLINK_KOBJECT_UEVENT) for %s, no udevd: "
		          "no poll", path);
		return;
	} else if (r == -EPERM) {
		why = "in a user namespace the kernel sends no uevents";
	} else {
		why = "cannot open a NETLINK_KOBJECT_UEVENT socket";
	}
	pw->stats.source = "poll";
	log_notice("power: re-reading %s every %d s while a job waits on power: %s%s%s", path,
	           POWER_POLL_SEC, why, r < 0 && r != -EPERM ? ": " : "",
	           r < 0 && r != -EPERM ? strerror(-r) : "");
	pw->timer = event_new(lp->p->base, -1, EV_PERSIST, power_timer_cb, lp);
}

void linux_power_open(struct linux_priv *lp) {
	lp->power = xcalloc(1, sizeof *lp->power);
	lp->power->nl_fd = -1;
	power_events_open(lp);
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

bool linux_power_stats(struct platform *p, struct linux_power_stats *out) {
	struct linux_priv *lp = p->priv;
	if (p->ops != &platform_linux_ops || lp == NULL || lp->power == NULL)
		return false;
	*out = lp->power->stats;
	return true;
}

void linux_power_close(struct linux_priv *lp) {
	struct linux_power *pw = lp->power;
	if (pw == NULL)
		return;
	if (pw->timer)
		event_free(pw->timer);
	if (pw->sde_ev)
		event_free(pw->sde_ev);
	if (pw->nl_ev)
		event_free(pw->nl_ev);
	if (pw->nl_fd >= 0)
		close(pw->nl_fd);
#if MCPJOB_WITH_SYSTEMD
	sd_device_monitor_unref(pw->mon);
	sd_event_unref(pw->sde);
#endif
	free(pw);
	lp->power = NULL;
}
