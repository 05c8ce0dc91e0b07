/*
 * linux.h - private to the linux device-state provider (platform/linux/).
 *
 * linux.c owns the ops table and struct linux_priv; each source lives in its
 * own file and writes its fields of lp->now, then calls linux_publish():
 *   net.c      rtnetlink default route + metered rule (NetworkManager or
 *              interface-name patterns)
 *   bus.c      the system bus (sd-bus) driven from the libevent loop, shared
 *              by NetworkManager (net.c) and logind (idle.c)
 *   power.c    /sys/class/power_supply: sd-device monitor, kernel uevents
 *              (no udevd) or a slow timer
 *   idle.c     logind IdleHint, or loadavg on a timer
 *   storage.c  statvfs of the state dir on a timer
 * The parsers are declared here too so tests can run them on fake input.
 */
#ifndef MCPJOB_PLATFORM_LINUX_H
#define MCPJOB_PLATFORM_LINUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform/provider.h"

/* make WITH_SYSTEMD=0: no sd-bus (NetworkManager, logind) and no sd-device
 * (udev) - rtnetlink, interface names, loadavg and sysfs polling only. */
#ifndef MCPJOB_WITH_SYSTEMD
#define MCPJOB_WITH_SYSTEMD 1
#endif

struct device_settings;
struct sd_bus;
struct linux_net;
struct linux_power;
struct linux_idle;
struct linux_storage;

struct linux_priv {
	struct platform *p;
	struct device_state now; /* what the sources last measured */
	struct sd_bus *bus;      /* system bus; NULL when unreachable */
	struct event *bus_ev;
	struct linux_net *net;
	struct linux_power *power;
	struct linux_idle *idle;
	struct linux_storage *storage;
};

/* Hand lp->now to platform_update() (which reports real changes only). */
void linux_publish(struct linux_priv *lp);

/*
 * platform_linux_refresh() - re-read what is read from files right now
 * (power supplies, storage, loadavg) instead of waiting for the next event
 * or timer. For tests that change a fake power_supply tree.
 */
void platform_linux_refresh(struct platform *p);

/* --- bus.c ---------------------------------------------------------------- */
/* Connect to the system bus; false (quietly, logged at debug) when there is none. */
bool linux_bus_open(struct linux_priv *lp);
/* Re-arm the libevent watch after queueing messages outside a bus callback. */
void linux_bus_arm(struct linux_priv *lp);
void linux_bus_close(struct linux_priv *lp);
/*
 * Read property @name of @iface at @dest @path now (blocking, bounded, never
 * starting the service) as basic @type ('b' into an int, 'u' into a
 * uint32_t). 0, or -errno when the service is absent or does not answer.
 */
int linux_bus_get_prop(struct linux_priv *lp, const char *dest, const char *path,
                       const char *iface, const char *name, char type, void *out);
struct sd_bus_message;
/*
 * Find property @name in a PropertiesChanged signal for interface @iface and
 * read it as basic @type ('b' or 'u') into @out (an int or a uint32_t).
 * Returns 1 when found, 0 when the signal does not carry it, <0 on a bad message.
 */
int linux_bus_changed_prop(struct sd_bus_message *m, const char *iface, const char *name,
                           char type, void *out);

/* --- net.c ---------------------------------------------------------------- */
void linux_net_open(struct linux_priv *lp);
void linux_net_close(struct linux_priv *lp);
/* The system bus went away: stop trusting NetworkManager's last answer. */
void linux_net_bus_gone(struct linux_priv *lp);
/* True when @ifname matches one of the metered_interfaces patterns. */
bool linux_net_iface_metered(const struct device_settings *s, const char *ifname);
/* NetworkManager's NMMetered value as metered (1), unmetered (0), or -1 for
 * NM_METERED_UNKNOWN (then the interface-name rule decides). */
int linux_net_nm_metered(uint32_t nm_metered);

/* --- power.c -------------------------------------------------------------- */
void linux_power_open(struct linux_priv *lp);
void linux_power_refresh(struct linux_priv *lp);
/* Poll power_supply while @on, when no udev events come (else a no-op). */
void linux_power_poll(struct linux_priv *lp, bool on);
void linux_power_close(struct linux_priv *lp);
/*
 * linux_power_read() - read a power_supply class tree at @path.
 * Sets *@charging and *@battery_low to 0, 1 or DEV_UNKNOWN. Returns 0, or -1
 * with *@cause (one sentence) when something needed could not be read; the
 * values then still hold whatever could be decided.
 */
int linux_power_read(const char *path, int *charging, int *battery_low, char **cause);

/* What a datagram on the kernel's uevent socket means to power.c. */
enum {
	LINUX_POWER_UEVENT_REJECT = -1, /* not from the kernel, or not a uevent: *why says which */
	LINUX_POWER_UEVENT_OTHER = 0,   /* a kernel uevent of another subsystem */
	LINUX_POWER_UEVENT_POWER = 1,   /* SUBSYSTEM=power_supply: re-read the tree */
};
struct ucred;
/*
 * linux_power_uevent_classify() - judge @len bytes from a NETLINK_KOBJECT_UEVENT
 * socket, sent from netlink port @sender_port with SCM_CREDENTIALS @cred
 * (NULL when none came). Only port 0 with pid 0 and uid 0 is the kernel.
 */
int linux_power_uevent_classify(const char *buf, size_t len, uint32_t sender_port,
                          const struct ucred *cred, const char **why);

/* How power.c learns of changes, and what its uevent socket saw (tests). */
struct linux_power_stats {
	const char *source;    /* "udev", "kernel" (uevents), or "poll" */
	uint32_t port;         /* the uevent socket's netlink port id */
	unsigned long seen;    /* datagrams received */
	unsigned long power;   /* of them, kernel power_supply uevents */
	unsigned long rejected;
	unsigned long overflows; /* ENOBUFS: the queue overflowed, tree re-read */
};
/* False when @p is not the linux provider. */
bool linux_power_stats(struct platform *p, struct linux_power_stats *out);

/* --- idle.c --------------------------------------------------------------- */
void linux_idle_open(struct linux_priv *lp);
void linux_idle_refresh(struct linux_priv *lp);
/* Poll the load average while @on, when logind is absent (else a no-op). */
void linux_idle_poll(struct linux_priv *lp, bool on);
void linux_idle_close(struct linux_priv *lp);
/* The system bus went away: fall back to loadavg. */
void linux_idle_bus_gone(struct linux_priv *lp);
/* Idle from /proc/loadavg-style text: 1, 0, or DEV_UNKNOWN when unparsable. */
int linux_idle_from_loadavg(const char *text, double idle_load);

/* --- storage.c ------------------------------------------------------------ */
void linux_storage_open(struct linux_priv *lp);
void linux_storage_refresh(struct linux_priv *lp);
/* Re-check free space periodically while @on. */
void linux_storage_poll(struct linux_priv *lp, bool on);
void linux_storage_close(struct linux_priv *lp);
/* statvfs(@dir): 1 when free space is below @low_percent, else 0; -1 with
 * *@cause when it cannot be measured. */
int linux_storage_read(const char *dir, int low_percent, char **cause);

#endif
