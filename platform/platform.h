/*
 * platform.h - device state behind one small interface.
 *
 * A provider (ops table chosen by name, as OpenSMTPD chooses queue back
 * ends) keeps a struct device_state current and calls platform_update()
 * when something changes; platform_update() tells the engine through the
 * change callback only when the state really differs. Providers:
 *   "linux" - rtnetlink, NetworkManager over sd-bus, power_supply via
 *             sd-device, logind IdleHint, statvfs of the state dir.
 *   "sim"   - state set over the control socket (device.set), for tests and
 *             demos; starts as: network unmetered, charging, battery ok,
 *             idle, storage ok.
 * A value a provider cannot read is DEV_UNKNOWN; the constraint gate's
 * policy for unknown is a setting (default: allowed). What providers
 * implement (the ops table, struct platform) is in platform/provider.h;
 * this header is all a consumer sees.
 */
#ifndef MCPJOB_PLATFORM_H
#define MCPJOB_PLATFORM_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

/* Settings of the providers (the configuration's "device" object). */
struct device_settings {
	char **metered_interfaces;  /* fnmatch patterns; default wwan*, ppp*, usb* */
	double idle_load;           /* idle when loadavg(1 min) below this; default 0.5 */
	int storage_low_percent;    /* storage low below this free %; default 10 */
	char *power_supply_path;    /* default /sys/class/power_supply */
	bool unknown_allows;        /* a constraint on an unknown value holds; default true */
};

#define DEV_UNKNOWN (-1)

enum dev_network { DEV_NET_NONE = 0, DEV_NET_METERED = 1, DEV_NET_UNMETERED = 2 };

struct device_state {
	int network;     /* enum dev_network or DEV_UNKNOWN */
	int charging;    /* 0, 1 or DEV_UNKNOWN */
	int battery_low; /* 0, 1 or DEV_UNKNOWN */
	int idle;        /* 0, 1 or DEV_UNKNOWN */
	int storage_low; /* 0, 1 or DEV_UNKNOWN */
};

struct platform;

typedef void (*platform_change_fn)(void *arg, const struct device_state *old,
                                   const struct device_state *now);

/*
 * What pending and running jobs depend on. Event-driven sources (netlink,
 * udev, D-Bus) cost nothing while idle and always run; a source that can
 * only be polled (load average, statvfs, power_supply without udev) is
 * polled only while some job waits on its value, so an idle daemon never
 * wakes up.
 */
#define DEV_WATCH_NETWORK  0x01u
#define DEV_WATCH_CHARGING 0x02u
#define DEV_WATCH_BATTERY  0x04u
#define DEV_WATCH_IDLE     0x08u
#define DEV_WATCH_STORAGE  0x10u
#define DEV_WATCH_COUNT    5

/* What platform_open() needs; each engine passes its own. */
struct platform_args {
	const char *name;                       /* "linux" or "sim" */
	struct event_base *base;
	const struct device_settings *settings; /* borrowed; may be NULL for "sim" */
	const char *state_dir;                  /* where storage is measured; NULL: "/" */
	platform_change_fn fn;                  /* real changes only; may be NULL */
	void *arg;
	bool no_system_bus; /* linux: leave NetworkManager and logind alone (a test in a
	                     * private network namespace: the host's NetworkManager would
	                     * describe the host's network) */
};

/* platform_open() - start provider @a->name. Returns NULL with *@cause. */
struct platform *platform_open(const struct platform_args *a, char **cause);
void platform_close(struct platform *p);
const char *platform_name(const struct platform *p);
void platform_get(const struct platform *p, struct device_state *out);
bool platform_can_set(const struct platform *p);
/* key: network (none|metered|unmetered|unknown), charging, battery_low, idle,
 * storage_low (true|false|unknown). */
int platform_set(struct platform *p, const char *key, const char *value, char **cause);

/* After a reload: the new configuration's settings (the old ones are freed). */
void platform_set_settings(struct platform *p, const struct device_settings *settings);
/* Read the device state again now (mcpjobctl reload, SIGHUP). */
void platform_refresh(struct platform *p);
/* Tell the provider which values jobs wait on now (DEV_WATCH_* bits). */
void platform_watch(struct platform *p, unsigned mask);

/* {"network": "unmetered", "charging": true, ..., unknown values as null}. */
json_t *platform_state_to_json(const struct device_state *d);
const char *platform_network_name(int network);

#endif
